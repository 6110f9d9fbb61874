"""Staff console for credits.

The ledger, balances and webhook logs are read-only for everyone, superusers included: credits
move from here only through the "Grant or adjust credits" form (linked from the user page and
the credit accounts list), which calls `credits_grant` with a reason and records the staff
member, and the refund page of a payment, which calls `payment_refund`. Both write the admin
history (LogEntry) with the reason.
"""

import uuid
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.core.validators import FileExtensionValidator
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from import_export import resources

from accounts.models import User
from accounts.services import user_lock
from config.admin import ReadOnlyAdmin
from config.admin_tools import CsvExportMixin, OperationForm, key_value_table, operation_view, with_reason
from credits import services
from credits.models import (
    MANUAL_PROVIDERS,
    CreditAccount,
    CreditBalance,
    CreditPackage,
    CreditTransaction,
    ManualPaymentRecord,
    Payment,
    PaymentEvent,
    PaymentRefund,
    WebhookLog,
)
from credits.selectors import balance_get


@admin.register(CreditPackage)
class CreditPackageAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "credits",
        "price",
        "currency",
        "discount_percent",
        "price_per_credit",
        "is_active",
        "sort_order",
    ]
    list_editable = ["is_active", "sort_order"]
    list_filter = ["is_active", "currency"]
    search_fields = ["name"]
    readonly_fields = ["id", "created_at", "updated_at"]

    def has_delete_permission(self, request, obj=None):
        # Packages that were bought are referenced by payments; deactivate instead of deleting.
        return False


class CreditTransactionResource(resources.ModelResource):
    """The ledger as CSV: one row per movement, users by email."""

    class Meta:
        model = CreditTransaction
        fields = (
            "id",
            "created_at",
            "user__email",
            "type",
            "amount",
            "balance_after",
            "reason",
            "job_id",
            "payment__id",
            "idempotency_key",
            "created_by__email",
        )
        export_order = fields


@admin.register(CreditTransaction)
class CreditTransactionAdmin(CsvExportMixin, ReadOnlyAdmin):
    resource_classes = [CreditTransactionResource]
    list_display = ["created_at", "user", "type", "amount", "balance_after", "short_reason", "created_by"]
    list_filter = ["type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["user__email", "idempotency_key", "reason", "=job_id", "=payment__id"]
    list_select_related = ["user", "created_by"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    @admin.display(description="reason", ordering="reason")
    def short_reason(self, obj):
        return Truncator(obj.reason).chars(60)


@admin.register(CreditBalance)
class CreditBalanceAdmin(ReadOnlyAdmin):
    list_display = ["user", "balance", "updated_at"]
    search_fields = ["user__email"]
    list_select_related = ["user"]


class GrantForm(OperationForm):
    TYPES = [
        (CreditTransaction.Type.BONUS, "Bonus (adds credits)"),
        (CreditTransaction.Type.ADJUSTMENT, "Adjustment (positive or negative correction)"),
    ]

    type = forms.ChoiceField(choices=TYPES)
    amount = forms.IntegerField(
        min_value=-1_000_000,
        max_value=1_000_000,
        help_text="Credits; an adjustment may be negative (never below zero).",
    )
    # One token per rendered form: submitting the same form twice grants once.
    token = forms.UUIDField(widget=forms.HiddenInput)
    field_order = ["type", "amount", "reason", "token"]

    def clean(self):
        data = super().clean()
        amount, type_ = data.get("amount"), data.get("type")
        if amount == 0:
            self.add_error("amount", "The amount cannot be zero.")
        elif amount is not None and amount < 0 and type_ == CreditTransaction.Type.BONUS:
            self.add_error("amount", "A bonus must be positive; use an adjustment to remove credits.")
        return data


def balance_of(user) -> int:
    balance = getattr(user, "credit_balance", None)
    return balance.balance if balance is not None else 0


def grant_view(model_admin: admin.ModelAdmin, request, user_id):
    """Grant or adjust a user's credits through `credits_grant` (shared by the user page and the
    credit accounts list); the history entry is the user's."""
    user = get_object_or_404(User.objects.select_related("credit_balance"), pk=user_id)

    def perform(data):
        key = f"admin:{data['token']}"
        # The user row lock serialises two submissions of one form (lock order: user, then
        # balance), so the second sees the first's ledger row and logs nothing.
        user_lock(user_id=user.pk)
        if CreditTransaction.objects.filter(idempotency_key=key).exists():
            return None
        row = services.credits_grant(
            user=user,
            amount=data["amount"],
            type=data["type"],
            reason=data["reason"],
            idempotency_key=key,
            created_by=request.user,
        )
        return with_reason(
            f"Credits {row.type}: {row.amount:+d} credits for {user.email}; balance now {row.balance_after}.",
            data["reason"],
        )

    return operation_view(
        model_admin,
        request,
        obj=user,
        form_class=GrantForm,
        perform=perform,
        title=f"Grant or adjust credits: {user.email}",
        form_id="grant-credits-form",
        success_url=reverse("admin:accounts_user_change", args=[user.pk]),
        allowed=request.user.has_perm("credits.grant_credits"),
        initial={"token": uuid.uuid4(), "type": CreditTransaction.Type.BONUS},
        extra_context={
            "summary": [("User", user.email), ("Current balance", f"{balance_of(user)} credits")],
            "submit_label": "Write to the ledger",
        },
    )


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdmin):
    """Users seen from the credits side, with the grant/adjust form."""

    list_display = ["email", "name", "balance", "grant_link"]
    search_fields = ["email", "name"]
    fields = ["email", "name", "balance", "grant_link"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("credit_balance")

    def may_grant(self, request) -> bool:
        return request.user.has_perm("credits.grant_credits")

    def get_list_display(self, request):
        # The grant link only for staff who may grant (the others would be refused).
        shown = super().get_list_display(request)
        return shown if self.may_grant(request) else [name for name in shown if name != "grant_link"]

    def get_fields(self, request, obj=None):
        shown = super().get_fields(request, obj)
        return shown if self.may_grant(request) else [name for name in shown if name != "grant_link"]

    @admin.display(description="balance")
    def balance(self, obj):
        return balance_of(obj)

    @admin.display(description="credits")
    def grant_link(self, obj):
        url = reverse("admin:credits_creditaccount_grant", args=[obj.pk])
        return format_html('<a href="{}">Grant or adjust credits</a>', url)

    def get_urls(self):
        return [
            path(
                "<uuid:user_id>/grant/",
                self.admin_site.admin_view(self.grant_view),
                name="credits_creditaccount_grant",
            ),
            *super().get_urls(),
        ]

    def grant_view(self, request, user_id):
        return grant_view(self, request, user_id)


class PaymentResource(resources.ModelResource):
    class Meta:
        model = Payment
        fields = (
            "id",
            "created_at",
            "user__email",
            "package__name",
            "provider",
            "status",
            "amount",
            "currency",
            "credits",
            "refunded_amount",
            "credits_clawed_back",
            "refund_shortfall",
            "transaction_id",
            "completed_at",
            "refunded_at",
        )
        export_order = fields


class RefundForm(OperationForm):
    amount = forms.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0.01"), help_text="Amount to refund."
    )
    # One token per rendered form: submitting the same confirmation twice refunds once.
    token = forms.UUIDField(widget=forms.HiddenInput)
    field_order = ["amount", "reason", "token"]

    def __init__(self, *args, left: Decimal, **kwargs):
        super().__init__(*args, **kwargs)
        self.left = left
        self.fields["amount"].help_text = f"At most {left}; the credits are clawed back in proportion."

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount > self.left:
            raise forms.ValidationError(f"At most {self.left} is left to refund.")
        return amount


SLIP_MAX_BYTES = 5 * 1024 * 1024
# What a slip's first bytes are: a JPEG, a PNG, a WebP or a PDF (the extension alone proves nothing).
SLIP_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF", b"%PDF-")


class SlipField(forms.FileField):
    """An optional picture (or PDF) of the transfer slip, at most 5 MB."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "A picture (JPEG, PNG, WebP) or PDF of the transfer slip, optional.")
        kwargs.setdefault("validators", [FileExtensionValidator(["jpg", "jpeg", "png", "webp", "pdf"])])
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        upload = super().clean(data, initial)
        if upload:
            if upload.size > SLIP_MAX_BYTES:
                raise forms.ValidationError("A slip is at most 5 MB.")
            head = upload.read(8)
            upload.seek(0)
            if not head.startswith(SLIP_SIGNATURES):
                raise forms.ValidationError("The slip must be a JPEG, PNG, WebP or PDF file.")
        return upload


class ManualRefundForm(RefundForm):
    """A refund of money sent back by hand: the transfer's reference and optional slip too."""

    reference = forms.CharField(
        max_length=255,
        required=False,
        help_text="The bank's or wallet's reference of the refund (recorded with the slip for the audit).",
    )
    slip = SlipField()
    field_order = ["amount", "reference", "slip", "reason", "token"]

    def clean(self):
        data = super().clean()
        if data.get("slip") and not (data.get("reference") or "").strip():
            self.add_error("reference", "Give the reference of the transfer the slip shows.")
        return data


class ConfirmForm(OperationForm):
    reference = forms.CharField(max_length=255, help_text="The bank's or wallet's reference of the payment.")
    slip = SlipField()
    field_order = ["reference", "slip", "reason"]


class ManualPaymentRecordInline(admin.TabularInline):
    """Confirmations and refunds finance staff made by hand (read-only: written by the services)."""

    model = ManualPaymentRecord
    extra = 0
    can_delete = False
    fields = ["created_at", "action", "amount", "reference", "slip", "note", "created_by"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PaymentRefundInline(admin.TabularInline):
    """The payment's refunds, one row each (read-only: they are written by `payment_refund`)."""

    model = PaymentRefund
    extra = 0
    can_delete = False
    fields = [
        "created_at",
        "amount",
        "credits_clawed_back",
        "shortfall",
        "reason",
        "created_by",
        "event",
        "idempotency_key",
    ]
    readonly_fields = fields
    ordering = ["created_at", "id"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by", "event")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(CsvExportMixin, ReadOnlyAdmin):
    """Payments; a completed one is refunded (in whole or in part, with a reason) from its page,
    through `payment_refund`, the service the providers' refund webhooks use. Its refunds are
    listed on the page, one row each."""

    resource_classes = [PaymentResource]
    inlines = [PaymentRefundInline, ManualPaymentRecordInline]
    change_form_template = "admin/credits/payment/change_form.html"
    list_display = [
        "created_at",
        "user",
        "package",
        "amount",
        "currency",
        "provider",
        "status",
        "refunded_amount",
    ]
    list_filter = ["status", "provider", "currency", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["user__email", "=id", "transaction_id", "gateway_payment_id"]
    list_select_related = ["user", "package"]
    date_hierarchy = "created_at"

    @admin.display(description="amount", ordering="amount")
    def price(self, obj):
        return f"{obj.amount} {obj.currency}"

    def get_fields(self, request, obj=None):
        # Every field, with the metadata as a key/value table instead of raw JSON.
        fields = [f.name for f in self.model._meta.fields if f.name != "metadata"]
        return [*fields, "metadata_table"]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description="metadata")
    def metadata_table(self, obj):
        return key_value_table(obj.metadata)

    def has_refund_permission(self, request):
        return request.user.has_perm("credits.refund_payment")

    def has_confirm_permission(self, request):
        return request.user.has_perm("credits.confirm_payment")

    def get_urls(self):
        return [
            path(
                "<uuid:payment_id>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name="credits_payment_refund",
            ),
            path(
                "<uuid:payment_id>/confirm/",
                self.admin_site.admin_view(self.confirm_view),
                name="credits_payment_confirm",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_refund": self.has_refund_permission(request),
            "can_confirm": self.has_confirm_permission(request),
            "manual_providers": MANUAL_PROVIDERS,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def confirm_view(self, request, payment_id):
        """Finance staff confirm a PromptPay, TrueMoney or bank-transfer payment they saw arrive,
        with its reference and an optional slip, through `payment_confirm_manually`."""
        payment = get_object_or_404(Payment.objects.select_related("user", "package", "plan"), pk=payment_id)

        def perform(data):
            done, confirmed = services.payment_confirm_manually(
                payment=payment,
                reference=data["reference"],
                slip=data.get("slip"),
                note=data["reason"],
                confirmed_by=request.user,
            )
            if not confirmed:
                return None
            return with_reason(
                f"Confirmed payment {done.pk} of {done.amount} {done.currency} by hand "
                f"({done.get_provider_display()} reference {data['reference']}).",
                data["reason"],
            )

        return operation_view(
            self,
            request,
            obj=payment,
            form_class=ConfirmForm,
            form_kwargs={"files": request.FILES or None},
            perform=perform,
            title=f"Confirm payment {payment.pk}",
            form_id="confirm-payment-form",
            success_url=reverse("admin:credits_payment_change", args=[payment.pk]),
            allowed=self.has_confirm_permission(request) and payment.provider in MANUAL_PROVIDERS,
            extra_context={
                "summary": [
                    ("User", payment.user.email),
                    ("Buys", payment.title),
                    ("Provider", payment.get_provider_display()),
                    ("Status", payment.get_status_display()),
                    ("Amount", f"{payment.amount} {payment.currency}"),
                    ("Checkout reference", (payment.metadata or {}).get("checkout", {}).get("reference", "")),
                ],
                "submit_label": "Confirm payment",
            },
        )

    def refund_view(self, request, payment_id):
        payment = get_object_or_404(Payment.objects.select_related("user", "package"), pk=payment_id)
        left = payment.amount - payment.refunded_amount

        through_provider = payment.provider in services.API_REFUND_PROVIDERS
        by_finance = payment.provider in MANUAL_PROVIDERS

        def perform(data):
            key = f"admin:{data['token']}"
            if through_provider:
                # The provider's refund API first (no lock held while it answers), then applied
                # once under the payment lock; its refund notice may have applied it already.
                if PaymentRefund.objects.filter(payment=payment, idempotency_key=key).exists():
                    return None
                done, refund_id = services.payment_refund_through_provider(
                    payment=payment,
                    amount=data["amount"],
                    key=key,
                    reason=data["reason"],
                    created_by=request.user,
                )
                return with_reason(
                    f"Refunded {data['amount']} {done.currency} of payment {done.pk} through "
                    f"{done.get_provider_display()} (refund {refund_id}; now {done.refunded_amount} "
                    f"of {done.amount} refunded, status {done.status}; {done.credits_clawed_back} "
                    f"credits clawed back in total, shortfall {done.refund_shortfall}).",
                    data["reason"],
                )
            if by_finance and data.get("reference"):
                done, refunded = services.payment_refund_manually(
                    payment=payment,
                    amount=data["amount"],
                    reference=data["reference"],
                    slip=data.get("slip"),
                    key=key,
                    reason=data["reason"],
                    refunded_by=request.user,
                )
                if not refunded:
                    return None
                return with_reason(
                    f"Refunded {data['amount']} {done.currency} of payment {done.pk} by hand "
                    f"(reference {data['reference']}; now {done.refunded_amount} of {done.amount} "
                    f"refunded, status {done.status}; {done.credits_clawed_back} credits clawed back "
                    f"in total, shortfall {done.refund_shortfall}).",
                    data["reason"],
                )
            # Under the payment row lock (the service takes it too, first), so a second
            # submission of one form sees the first's refund and logs nothing.
            locked = Payment.objects.select_for_update().get(pk=payment.pk)
            if PaymentRefund.objects.filter(payment=locked, idempotency_key=key).exists():
                return None
            done = services.payment_refund(
                payment=payment,
                amount=data["amount"],
                reason=data["reason"],
                created_by=request.user,
                idempotency_key=key,
            )
            return with_reason(
                f"Refunded {data['amount']} {done.currency} of payment {done.pk} by hand, outside "
                f"the platform (now {done.refunded_amount} of {done.amount} refunded, status "
                f"{done.status}; {done.credits_clawed_back} credits clawed back in total, "
                f"shortfall {done.refund_shortfall}).",
                data["reason"],
            )

        return operation_view(
            self,
            request,
            obj=payment,
            form_class=ManualRefundForm if by_finance else RefundForm,
            form_kwargs={"left": left, "files": request.FILES or None},
            perform=perform,
            title=f"Refund payment {payment.pk}",
            form_id="refund-payment-form",
            success_url=reverse("admin:credits_payment_change", args=[payment.pk]),
            allowed=self.has_refund_permission(request)
            or (by_finance and self.has_confirm_permission(request)),
            initial={"token": uuid.uuid4(), "amount": left},
            extra_context={
                "summary": [
                    ("User", payment.user.email),
                    ("Buys", payment.title),
                    ("Status", payment.get_status_display()),
                    ("Amount", f"{payment.amount} {payment.currency}"),
                    ("Already refunded", f"{payment.refunded_amount} {payment.currency}"),
                    ("Credits granted", payment.credits),
                    ("Credits clawed back so far", payment.credits_clawed_back),
                    ("User's balance now", balance_get(user=payment.user)),
                    (
                        "How the money goes back",
                        f"{payment.get_provider_display()}'s refund API "
                        f"(payment {payment.provider_payment_id or 'unknown'})"
                        if through_provider
                        else "By hand, outside the platform: this records it and claws the credits back",
                    ),
                ],
                "submit_label": "Refund",
            },
        )


@admin.register(WebhookLog)
class WebhookLogAdmin(ReadOnlyAdmin):
    """Every delivery received. The list keeps to columns that fit a 1366 px screen (the event id
    is shortened; the full one, headers and body are on the row's page) and filters by provider."""

    list_display = [
        "created_at",
        "provider",
        "short_event_id",
        "short_event_type",
        "outcome",
        "http_status",
        "signed",
    ]
    list_filter = [
        "provider",
        "source",
        "outcome",
        "signature_valid",
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["event_id", "=payment__id"]
    date_hierarchy = "created_at"
    list_select_related = ["payment"]

    @admin.display(description="event id", ordering="event_id")
    def short_event_id(self, obj):
        return wrappable(Truncator(obj.event_id).chars(28), obj.event_id)

    @admin.display(description="event type", ordering="event_type")
    def short_event_type(self, obj):
        return wrappable(obj.event_type, obj.event_type)

    # Short headings: the admin never wraps a list's headings.
    @admin.display(description="HTTP", ordering="status_code")
    def http_status(self, obj):
        return obj.status_code

    @admin.display(description="signed", ordering="signature_valid", boolean=True)
    def signed(self, obj):
        return obj.signature_valid


def wrappable(text: str, full: str):
    """A list cell's text that may break anywhere (ids and dotted event types have no spaces, and
    would otherwise hold their column as wide as the whole value), the full value as a tooltip."""
    return format_html('<span style="overflow-wrap:anywhere" title="{}">{}</span>', full, text)


@admin.register(PaymentEvent)
class PaymentEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "provider", "event_id", "type", "payment"]
    list_filter = ["provider", "type"]
    search_fields = ["event_id", "=payment__id"]
    list_select_related = ["payment"]
    date_hierarchy = "created_at"
