"""Staff console for credits.

The ledger, balances and webhook logs are read-only for everyone, superusers included: the
only way to move credits from here is the "Grant or adjust credits" form on a user's credit
account, which calls `credits_grant` with a reason and records the staff member.
"""

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from config.admin import ReadOnlyAdmin
from config.exceptions import ApplicationError
from credits import services
from credits.models import (
    CreditAccount,
    CreditBalance,
    CreditPackage,
    CreditTransaction,
    Payment,
    PaymentEvent,
    WebhookLog,
)


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


@admin.register(CreditTransaction)
class CreditTransactionAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "user",
        "type",
        "amount",
        "balance_after",
        "reason",
        "job_id",
        "payment",
        "created_by",
    ]
    list_filter = ["type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["user__email", "idempotency_key", "reason", "=job_id"]
    list_select_related = ["user", "payment", "created_by"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(CreditBalance)
class CreditBalanceAdmin(ReadOnlyAdmin):
    list_display = ["user", "balance", "updated_at"]
    search_fields = ["user__email"]
    list_select_related = ["user"]


class GrantForm(forms.Form):
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
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))
    # One token per rendered form: submitting the same form twice grants once.
    token = forms.UUIDField(widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        amount, type_ = data.get("amount"), data.get("type")
        if amount == 0:
            self.add_error("amount", "The amount cannot be zero.")
        elif amount is not None and amount < 0 and type_ == CreditTransaction.Type.BONUS:
            self.add_error("amount", "A bonus must be positive; use an adjustment to remove credits.")
        return data


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdmin):
    """Users seen from the credits side, with the grant/adjust form."""

    list_display = ["email", "name", "balance", "grant_link"]
    search_fields = ["email", "name"]
    fields = ["email", "name", "balance", "grant_link"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("credit_balance")

    @admin.display(description="balance")
    def balance(self, obj):
        balance = getattr(obj, "credit_balance", None)
        return balance.balance if balance is not None else 0

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
        if not (request.user.is_superuser or request.user.has_perm("credits.grant_credits")):
            raise PermissionDenied
        user = get_object_or_404(CreditAccount, pk=user_id)
        if request.method == "POST":
            form = GrantForm(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    row = services.credits_grant(
                        user=user,
                        amount=data["amount"],
                        type=data["type"],
                        reason=data["reason"],
                        idempotency_key=f"admin:{data['token']}",
                        created_by=request.user,
                    )
                except ApplicationError as exc:
                    form.add_error("amount", exc.message)
                else:
                    self.message_user(
                        request,
                        f"{row.amount:+d} credits for {user.email}; balance now {row.balance_after}.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(reverse("admin:credits_creditaccount_changelist"))
        else:
            form = GrantForm(initial={"token": uuid.uuid4(), "type": CreditTransaction.Type.BONUS})
        context = {
            **self.admin_site.each_context(request),
            "title": f"Grant or adjust credits: {user.email}",
            "form": form,
            "account": user,
            "balance": self.balance(user),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/credits/grant_credits.html", context)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "user",
        "package",
        "amount",
        "currency",
        "provider",
        "status",
        "credits",
        "refund_shortfall",
    ]
    list_filter = ["status", "provider", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["user__email", "=id", "transaction_id", "gateway_payment_id"]
    list_select_related = ["user", "package"]
    date_hierarchy = "created_at"
    actions = ["refund_payments"]

    @admin.action(description="Refund selected payments (claw back their credits)", permissions=["refund"])
    def refund_payments(self, request, queryset):
        done = 0
        for payment in queryset.order_by("pk"):
            try:
                services.payment_refund(
                    payment=payment,
                    created_by=request.user,
                    reason=f"Refunded by {request.user.email} in admin",
                )
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{payment.id}: {exc.message}", messages.WARNING)
        self.message_user(request, f"Refunded {done} payment(s).", messages.SUCCESS)

    def has_refund_permission(self, request):
        return request.user.is_superuser or request.user.has_perm("credits.refund_payment")


@admin.register(WebhookLog)
class WebhookLogAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "source",
        "event_id",
        "event_type",
        "outcome",
        "status_code",
        "signature_valid",
        "payment",
    ]
    list_filter = ["source", "outcome", "signature_valid", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["event_id", "=payment__id"]
    date_hierarchy = "created_at"
    list_select_related = ["payment"]


@admin.register(PaymentEvent)
class PaymentEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "provider", "event_id", "type", "payment"]
    list_filter = ["provider", "type"]
    search_fields = ["event_id"]
