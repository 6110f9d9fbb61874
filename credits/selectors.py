"""Reads of credits data, each already scoped to the caller."""

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Prefetch, QuerySet

from accounts.models import Subscription, SubscriptionPlan
from config.exceptions import NotFound
from credits.models import (
    LIFETIME_COUNTERS,
    CreditBalance,
    CreditPackage,
    CreditTransaction,
    Payment,
    PaymentRefund,
    Receipt,
)


def balance_get(*, user) -> int:
    """The user's current balance (0 when they have never had a ledger row)."""
    value = CreditBalance.objects.filter(user_id=user.pk).values_list("balance", flat=True).first()
    return value or 0


SUMMARY_FIELDS = (
    "balance",
    "lifetime_purchased",
    "lifetime_spent",
    "lifetime_refunded",
    "lifetime_bonus",
    "lifetime_adjusted",
)


def balance_summary(*, user) -> dict:
    """The balance and lifetime totals (spent is gross usage, positive): one read of the user's
    balance row, whose counters the ledger writes keep (its size does not depend on history).
    All zero when the user has never had a ledger row. A plain statement: this is the hottest
    authenticated read, and the ORM's query building was most of its cost."""
    with connection.cursor() as cursor:
        cursor.execute(_SUMMARY_SQL, [user.pk])
        row = cursor.fetchone()
    return dict(zip(SUMMARY_FIELDS, row or (0,) * len(SUMMARY_FIELDS), strict=True))


_SUMMARY_SQL = "SELECT {columns} FROM {table} WHERE {user} = %s".format(
    columns=", ".join(CreditBalance._meta.get_field(name).column for name in SUMMARY_FIELDS),
    table=CreditBalance._meta.db_table,
    user=CreditBalance._meta.get_field("user").column,
)


def package_list() -> QuerySet[CreditPackage]:
    return CreditPackage.objects.filter(is_active=True)


def package_get(*, package_id) -> CreditPackage | None:
    return CreditPackage.objects.filter(pk=package_id).first()


def transaction_list(*, user) -> QuerySet[CreditTransaction]:
    return CreditTransaction.objects.filter(user_id=user.pk).order_by("-created_at", "-id")


def transaction_get(*, user, transaction_id) -> CreditTransaction:
    """The caller's ledger row; another user's (or no) row → NotFound (404), indistinguishably."""
    row = transaction_list(user=user).filter(pk=transaction_id).first()
    if row is None:
        raise NotFound("Not found.")
    return row


def payment_list(*, user) -> QuerySet[Payment]:
    return (
        Payment.objects.filter(user_id=user.pk)
        .select_related("package", "plan")
        .order_by("-created_at", "-id")
    )


def payment_get(*, user, payment_id, with_refunds: bool = False) -> Payment:
    """The caller's payment; another user's (or no) payment → NotFound (404), indistinguishably.
    `with_refunds` prefetches its PaymentRefund rows, oldest first."""
    payments = payment_list(user=user).filter(pk=payment_id)
    if with_refunds:
        payments = payments.prefetch_related(
            Prefetch("refunds", queryset=PaymentRefund.objects.order_by("created_at", "id"))
        )
    payment = payments.first()
    if payment is None:
        raise NotFound("Not found.")
    return payment


def receipt_get(*, user, payment_id) -> Receipt:
    """The receipt of the caller's payment; another user's payment, or one without a receipt (not
    completed, free) → NotFound (404), indistinguishably."""
    receipt = (
        Receipt.objects.select_related("payment")
        .filter(payment__in=payment_list(user=user).filter(pk=payment_id))
        .first()
    )
    if receipt is None:
        raise NotFound("Not found.")
    return receipt


@dataclass(frozen=True)
class AuditMismatch:
    user_id: str
    email: str
    balance: int | None
    ledger_sum: int
    # lifetime counter name -> (stored on the balance row, summed from the ledger), mismatches only
    counters: dict = field(default_factory=dict)

    def __str__(self):
        text = f"{self.email} ({self.user_id}): balance={self.balance} ledger_sum={self.ledger_sum}"
        for name, (stored, summed) in self.counters.items():
            text += f" {name}={stored} ledger_{name}={summed}"
        return text


def _audit_sql() -> str:
    """Per user: the balance vs SUM(ledger), and each lifetime counter vs its ledger type's sum."""
    sums = ", ".join(
        f"COALESCE({'-' if sign < 0 else ''}SUM(amount) FILTER (WHERE type = '{tx_type}'), 0)::bigint"
        f" AS {name}"
        for tx_type, (name, sign) in LIFETIME_COUNTERS.items()
    )
    stored = ", ".join(f"b.{name}" for name, _ in LIFETIME_COUNTERS.values())
    summed = ", ".join(f"COALESCE(s.{name}, 0)" for name, _ in LIFETIME_COUNTERS.values())
    return f"""
WITH sums AS (
    SELECT user_id, SUM(amount)::bigint AS total, {sums} FROM {{ledger}} GROUP BY user_id
)
SELECT u.id, u.email, b.balance, COALESCE(s.total, 0), {stored}, {summed}
FROM {{balance}} b
FULL OUTER JOIN sums s ON s.user_id = b.user_id
JOIN {{user}} u ON u.id = COALESCE(b.user_id, s.user_id)
WHERE COALESCE(b.balance, 0) <> COALESCE(s.total, 0) OR b.balance < 0 OR s.total < 0
   OR (b.user_id IS NOT NULL AND ({stored}) <> ({summed}))
ORDER BY u.email
"""


def credits_audit() -> list[AuditMismatch]:
    """Every user whose balance differs from SUM(ledger) or is negative, or whose lifetime
    counters differ from their ledger sums per type (empty = books balance).

    One set-based query over the whole ledger, read in one snapshot (REPEATABLE READ is not
    needed: a single statement already sees one consistent snapshot).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _audit_sql().format(
                ledger=CreditTransaction._meta.db_table,
                balance=CreditBalance._meta.db_table,
                user=get_user_model()._meta.db_table,
            )
        )
        rows = cursor.fetchall()
    names = [name for name, _ in LIFETIME_COUNTERS.values()]
    mismatches = []
    for r in rows:
        stored, summed = r[4 : 4 + len(names)], r[4 + len(names) :]
        counters = {
            name: (s, t) for name, s, t in zip(names, stored, summed, strict=True) if s is not None and s != t
        }
        mismatches.append(
            AuditMismatch(user_id=str(r[0]), email=r[1], balance=r[2], ledger_sum=r[3], counters=counters)
        )
    return mismatches


def plan_list() -> QuerySet[SubscriptionPlan]:
    return SubscriptionPlan.objects.filter(is_active=True)


def plan_get(*, code: str) -> SubscriptionPlan | None:
    return SubscriptionPlan.objects.filter(code=code).first()


def subscription_current(*, user) -> Subscription:
    """The caller's live (`active` or `past_due`) subscription; none → NotFound (404)."""
    sub = (
        Subscription.objects.filter(user_id=user.pk, status__in=Subscription.LIVE_STATUSES)
        .select_related("plan")
        .first()
    )
    if sub is None:
        raise NotFound("You have no active subscription.")
    return sub
