"""Credits: packages, the append-only ledger, per-user balances, payments and webhook logs.

Invariant, held by the database and the services together: for every user,
CreditBalance.balance = SUM(CreditTransaction.amount) and balance >= 0, at every instant.
Only `credits.services` writes balances and ledger rows.
"""

from decimal import ROUND_HALF_UP, Decimal

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Subscription, SubscriptionPlan, User
from config.models import UUIDModel
from config.status_guard import status_guard

CURRENCY_THB = "THB"
# The transaction-local setting through which `payment_transition` authorises its one status
# write (credits/states.py; the guard trigger on Payment reads it).
PAYMENT_STATUS_SETTING = "credits.payment_transition"


class CreditPackage(UUIDModel):
    """A bundle of credits sold at a fixed price (seeded by migration 0002, editable in admin)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=255, blank=True)
    credits = models.PositiveIntegerField()
    price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default=CURRENCY_THB)
    discount_percent = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True, db_index=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "price", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(credits__gt=0), name="creditpackage_credits_gt_0"),
            models.CheckConstraint(condition=Q(price__gte=0), name="creditpackage_price_gte_0"),
            models.CheckConstraint(
                condition=Q(discount_percent__lte=100), name="creditpackage_discount_lte_100"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.credits} credits, {self.price} {self.currency})"

    @property
    def is_free(self) -> bool:
        return self.price == 0

    @property
    def price_per_credit(self) -> Decimal:
        return (self.price / self.credits).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


class Provider(models.TextChoices):
    STRIPE = "stripe", "Stripe"
    PROMPTPAY = "promptpay", "PromptPay"
    TRUEMONEY = "truemoney", "TrueMoney"
    RAZORPAY = "razorpay", "Razorpay"
    BANK_TRANSFER = "bank_transfer", "Bank transfer"
    FREE = "free", "Free"


# Money that reaches us without an API we can ask or a notice we can trust: finance staff confirm
# (and refund) these payments by hand, with the bank's or wallet's reference and a slip.
MANUAL_PROVIDERS = (Provider.PROMPTPAY, Provider.TRUEMONEY, Provider.BANK_TRANSFER)


class Payment(UUIDModel):
    """One attempt to buy a package (credits) or a subscription plan. Its effect — the credits,
    or the subscription's activation or renewal — happens once, when it completes.

    `credits` is a snapshot of the package's credits at purchase time, so later package edits
    never change what a pending payment grants or what a refund claws back.

    `status` moves only through `credits.services.payment_transition` (the table is in
    credits/states.py; a trigger refuses any other write). Each refund is a PaymentRefund row;
    `refunded_amount`, `credits_clawed_back` and `refund_shortfall` are their running totals,
    written in the same transaction.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        REFUNDED = "refunded", "Refunded"
        CANCELLED = "cancelled", "Cancelled"

    OPEN_STATUSES = (Status.PENDING, Status.PROCESSING)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments")
    # What is bought: a credit package, or a subscription plan; exactly one of them.
    package = models.ForeignKey(
        CreditPackage, on_delete=models.PROTECT, null=True, blank=True, related_name="payments"
    )
    plan = models.ForeignKey(
        SubscriptionPlan, on_delete=models.PROTECT, null=True, blank=True, related_name="payments"
    )
    # The subscription a plan payment started or renews, and the start of the period it pays for
    # (renewals only): one renewal payment per subscription and period.
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, null=True, blank=True, related_name="payments"
    )
    period_start = models.DateTimeField(null=True, blank=True)
    # What a payment buys for a higher layer (e.g. "shop_plan"), when it is neither a package nor
    # a subscription plan: its completion and failure are announced by the `payment_completed` and
    # `payment_failed` signals (credits/signals.py), whose receivers apply the effect.
    purpose = models.CharField(max_length=32, blank=True, default="", db_index=True)
    credits = models.PositiveIntegerField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default=CURRENCY_THB)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    gateway_payment_id = models.CharField(max_length=255, blank=True)
    gateway_customer_id = models.CharField(max_length=255, blank=True)
    # The provider's id of the money movement itself (a Stripe PaymentIntent, a Razorpay
    # payment), kept from its success notice: what a refund through the provider's API names.
    provider_payment_id = models.CharField(max_length=255, blank=True)
    transaction_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    receipt_url = models.URLField(max_length=500, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    refunded_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    credits_clawed_back = models.PositiveIntegerField(default=0)
    refund_shortfall = models.PositiveIntegerField(
        default=0, help_text="Credits a refund could not claw back because they were already spent."
    )
    metadata = models.JSONField(default=dict, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("refund_payment", "Can refund payments and claw back their credits"),
            (
                "confirm_payment",
                "Can confirm or refund PromptPay, TrueMoney and bank-transfer payments by hand",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="payment_user_created"),
            models.Index(fields=["status", "provider"]),
            models.Index(fields=["provider", "provider_payment_id"], name="payment_provider_payment_id"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_gte_0"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0, refunded_amount__lte=models.F("amount")),
                name="payment_refunded_amount_in_range",
            ),
            models.CheckConstraint(
                condition=Q(package__isnull=False, plan__isnull=True, purpose="")
                | Q(package__isnull=True, plan__isnull=False, purpose="")
                | (Q(package__isnull=True, plan__isnull=True) & ~Q(purpose="")),
                name="payment_buys_package_or_plan",
            ),
            models.UniqueConstraint(
                fields=["subscription", "period_start"],
                condition=Q(subscription__isnull=False, period_start__isnull=False),
                name="payment_one_renewal_per_period",
            ),
            # A free package can be claimed once per user; the database decides under races.
            models.UniqueConstraint(
                fields=["user", "package"],
                condition=Q(provider="free"),
                name="payment_free_package_once_per_user",
            ),
        ]
        triggers = [
            status_guard(
                name="payment_status_guard",
                setting=PAYMENT_STATUS_SETTING,
                writer="credits.services.payment_transition",
            ),
        ]

    def __str__(self):
        return f"{self.provider} payment {self.id} ({self.status})"

    @property
    def title(self) -> str:
        """What the payment buys, as the checkout and the receipt name it."""
        if self.plan_id:
            return self.plan.name
        if self.package_id:
            return self.package.name
        return str((self.metadata or {}).get("title") or self.purpose)

    @property
    def description(self) -> str:
        """What the payment bought, as its receipt line and its confirmation email word it: a
        credit package with its credits, else its `title` (a plan, or a higher layer's purpose
        such as a shop plan)."""
        if self.package_id:
            return f"{self.package.name} ({self.credits} credits)"
        return self.title


class PaymentRefund(UUIDModel):
    """One refund of (part of) a payment: the money given back and the credits it clawed back.

    Written by `credits.services.payment_refund` under the payment row lock, with the payment's
    running totals, in one transaction. `idempotency_key` is unique: a refund is applied at most
    once per key (`admin:<form token>` for staff, `<provider>:event:<event_id>` for a provider's
    notice), and at most once per provider refund id. `shortfall` is what could not be clawed
    back because the user had already spent it (credits never go below zero).
    """

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    credits_clawed_back = models.PositiveIntegerField(default=0)
    shortfall = models.PositiveIntegerField(default=0)
    idempotency_key = models.CharField(max_length=255, unique=True)
    provider_refund_id = models.CharField(max_length=255, null=True, blank=True)
    # Where it came from: a provider's refund notice, or a staff member (or neither: a service call).
    event = models.ForeignKey(
        "PaymentEvent", on_delete=models.PROTECT, null=True, blank=True, related_name="refunds"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The `adjustment` ledger row of the clawback (none when nothing could be taken back).
    ledger_entry = models.OneToOneField(
        "CreditTransaction", on_delete=models.PROTECT, null=True, blank=True, related_name="payment_refund"
    )
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["payment", "created_at"], name="paymentrefund_payment_created")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="paymentrefund_amount_gt_0"),
            models.UniqueConstraint(
                fields=["payment", "provider_refund_id"],
                condition=Q(provider_refund_id__isnull=False),
                name="paymentrefund_once_per_provider_refund",
            ),
        ]

    def __str__(self):
        return f"refund of {self.amount} on payment {self.payment_id}"


class ManualPaymentRecord(UUIDModel):
    """Finance staff's record of money seen outside the platform: a PromptPay, TrueMoney or bank
    transfer payment confirmed (`confirm`, at most one per payment: the database decides between
    two clicks) or refunded by hand (`refund`, tied to its PaymentRefund row). The reference is
    the bank's or wallet's; the slip is the optional image of the transfer. Written only by
    `credits.services.payment_confirm_manually` / `payment_refund_manually`, in the transaction
    of their effect; with the admin history it is the audit trail."""

    class Action(models.TextChoices):
        CONFIRM = "confirm", "Confirmed"
        REFUND = "refund", "Refunded"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="manual_records")
    action = models.CharField(max_length=16, choices=Action.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    reference = models.CharField(max_length=255)
    slip = models.FileField(upload_to="payment-slips/%Y/%m/", blank=True)
    note = models.CharField(max_length=500, blank=True)
    refund = models.OneToOneField(
        PaymentRefund, on_delete=models.PROTECT, null=True, blank=True, related_name="manual_record"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["payment"], condition=Q(action="confirm"), name="manualpaymentrecord_one_confirmation"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="manualpaymentrecord_amount_gt_0"),
            models.CheckConstraint(condition=~Q(reference=""), name="manualpaymentrecord_has_reference"),
        ]

    def __str__(self):
        return f"{self.get_action_display()} {self.amount} on payment {self.payment_id} ({self.reference})"


class ReceiptCounter(models.Model):
    """The last receipt number used in one year. Issuing a receipt locks this row (FOR UPDATE) in
    the payment's completing transaction, so numbers are gap-free: a rollback gives it back."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["year"]

    def __str__(self):
        return f"{self.year}: {self.last_number}"


class Receipt(UUIDModel):
    """The receipt / tax invoice of one completed payment: its yearly number (`INV-2026-000123`),
    what the seller and the buyer were when it was issued, and the VAT included (THB)."""

    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="receipt")
    number = models.CharField(max_length=32, unique=True)
    year = models.PositiveSmallIntegerField()
    sequence = models.PositiveIntegerField()
    issued_at = models.DateTimeField()
    seller = models.JSONField(default=dict)
    buyer = models.JSONField(default=dict)
    description = models.CharField(max_length=255)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0.00"))
    vat_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    net_amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["-year", "-sequence"]
        constraints = [
            models.UniqueConstraint(fields=["year", "sequence"], name="receipt_unique_year_sequence"),
            models.CheckConstraint(
                condition=Q(net_amount=models.F("amount") - models.F("vat_amount")),
                name="receipt_vat_adds_up",
            ),
        ]

    def __str__(self):
        return self.number


class CreditAccount(User):
    """A user seen from the credits side (admin only: the grant/adjust form lives here, so
    accounts/admin.py stays untouched)."""

    class Meta:
        proxy = True
        verbose_name = "credit account"
        permissions = [("grant_credits", "Can grant or adjust credits (through the ledger)")]


# The lifetime counter kept on CreditBalance for each ledger type, and its sign: every ledger
# write adds sign * amount to that column in the statement that updates the balance.
LIFETIME_COUNTERS = {
    "purchase": ("lifetime_purchased", 1),
    "usage": ("lifetime_spent", -1),
    "refund": ("lifetime_refunded", 1),
    "bonus": ("lifetime_bonus", 1),
    "adjustment": ("lifetime_adjusted", 1),
}


class CreditBalance(UUIDModel):
    """The current balance of one user; the row every ledger write locks first.

    It also carries the user's lifetime totals per ledger type (`LIFETIME_COUNTERS`), written in
    the same statement as the balance, so reading them never scans the ledger. The row CHECK
    ties them to the balance (balance = purchased - spent + refunded + bonus + adjusted);
    `credits_audit` checks each against its ledger sum.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credit_balance"
    )
    balance = models.IntegerField(default=0)
    # 64-bit: a lifetime total outgrows a 32-bit balance long before the balance does.
    lifetime_purchased = models.BigIntegerField(default=0, db_default=0)
    lifetime_spent = models.BigIntegerField(default=0, db_default=0)  # gross usage, positive
    lifetime_refunded = models.BigIntegerField(default=0, db_default=0)
    lifetime_bonus = models.BigIntegerField(default=0, db_default=0)
    lifetime_adjusted = models.BigIntegerField(default=0, db_default=0)  # net, either sign

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="creditbalance_balance_gte_0"),
            models.CheckConstraint(
                condition=Q(
                    lifetime_purchased__gte=0,
                    lifetime_spent__gte=0,
                    lifetime_refunded__gte=0,
                    lifetime_bonus__gte=0,
                ),
                name="creditbalance_lifetime_gte_0",
            ),
            models.CheckConstraint(
                condition=Q(
                    balance=models.F("lifetime_purchased")
                    - models.F("lifetime_spent")
                    + models.F("lifetime_refunded")
                    + models.F("lifetime_bonus")
                    + models.F("lifetime_adjusted")
                ),
                name="creditbalance_balance_is_lifetime_net",
            ),
        ]

    def __str__(self):
        return f"{self.user}: {self.balance} credits"


class CreditTransaction(UUIDModel):
    """One immutable ledger row. PostgreSQL refuses UPDATE and DELETE on this table.

    `job_id` is a plain UUID, not a foreign key: credits may not depend on jobs.
    """

    class Type(models.TextChoices):
        PURCHASE = "purchase", "Purchase"
        USAGE = "usage", "Usage"
        REFUND = "refund", "Refund"
        BONUS = "bonus", "Bonus"
        ADJUSTMENT = "adjustment", "Adjustment"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="credit_transactions"
    )
    type = models.CharField(max_length=16, choices=Type.choices)
    amount = models.IntegerField()
    balance_after = models.IntegerField()
    job_id = models.UUIDField(null=True, blank=True, db_index=True)
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="credit_transactions"
    )
    idempotency_key = models.CharField(max_length=255, unique=True)
    reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        # Each list's filter + its full ordering (ending with the id), so page 1 and every
        # keyset page are index range scans.
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="credittx_user_created"),
            models.Index(fields=["user", "type", "-created_at", "-id"], name="credittx_user_type_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="credittx_balance_after_gte_0"),
            models.CheckConstraint(
                condition=(
                    Q(type__in=["purchase", "refund", "bonus"], amount__gt=0)
                    | Q(type="usage", amount__lt=0)
                    | (Q(type="adjustment") & ~Q(amount=0))
                ),
                name="credittx_amount_sign_matches_type",
            ),
        ]
        triggers = [
            pgtrigger.Protect(name="credittx_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self):
        return f"{self.type} {self.amount:+d} for {self.user_id} (→ {self.balance_after})"


class WebhookLog(UUIDModel):
    """Every delivery to a signed webhook (payments and jobs, `credits.webhook_receiver`), whatever its
    outcome. An applied event's row is written in its effect's transaction and claims
    (source, provider, event_id), so each event takes effect once; refusals are logged alone."""

    class Outcome(models.TextChoices):
        PROCESSED = "processed", "Processed"
        DUPLICATE = "duplicate", "Duplicate"
        IGNORED = "ignored", "Ignored"
        REJECTED = "rejected", "Rejected"
        INVALID_SIGNATURE = "invalid_signature", "Invalid signature"
        ERROR = "error", "Error"

    source = models.CharField(max_length=32, db_index=True)  # "payments", "jobs" or "channels"
    provider = models.CharField(max_length=32, blank=True)
    event_id = models.CharField(max_length=255, blank=True, db_index=True)
    applied = models.BooleanField(default=False)
    event_type = models.CharField(max_length=64, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    payload = models.JSONField(null=True, blank=True)
    raw_body = models.TextField(blank=True)  # at most 64 KB; 4 KB when the signature failed
    body_sha256 = models.CharField(max_length=64, blank=True)
    body_length = models.PositiveIntegerField(default=0)
    signature_valid = models.BooleanField(default=False)
    outcome = models.CharField(max_length=32, choices=Outcome.choices, db_index=True)
    status_code = models.PositiveSmallIntegerField()
    error = models.TextField(blank=True)
    payment = models.ForeignKey(
        Payment, on_delete=models.SET_NULL, null=True, blank=True, related_name="webhook_logs"
    )
    job_id = models.UUIDField(null=True, blank=True, db_index=True)  # no FK: credits must not depend on jobs

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "provider", "event_id"],
                condition=models.Q(applied=True),
                name="webhooklog_applied_once_per_event",
            ),
        ]

    def __str__(self):
        return f"{self.source}/{self.provider} {self.event_id or '-'} {self.outcome}"


class PaymentEvent(models.Model):
    """A provider event whose effect has been applied; the unique key makes it happen once."""

    provider = models.CharField(max_length=32)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=64)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="paymentevent_once_per_event"),
        ]

    def __str__(self):
        return f"{self.provider}:{self.event_id} {self.type}"


class EmailSent(UUIDModel):
    """Proof that a lifecycle email was queued: one row per (user, kind, object, period).

    The row is inserted in the transaction of the event that causes the email; the unique
    constraint, not a flag, decides which of two concurrent or repeated triggers sends it."""

    class Kind(models.TextChoices):
        PAYMENT_RECEIVED = "payment_received", "Payment received"
        RENEWAL_UPCOMING = "renewal_upcoming", "Renewal upcoming"
        RENEWAL_FAILED = "renewal_failed", "Renewal failed"
        SUBSCRIPTION_EXPIRED = "subscription_expired", "Subscription expired"
        SUBSCRIPTION_CANCELLED = "subscription_cancelled", "Subscription cancelled"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="lifecycle_emails")
    kind = models.CharField(max_length=40, choices=Kind.choices)
    object_id = models.CharField(max_length=64)
    period = models.CharField(max_length=40, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "object_id", "period"], name="email_sent_once_per_event"
            ),
        ]

    def __str__(self):
        return f"{self.kind} {self.object_id} {self.period}".strip()
