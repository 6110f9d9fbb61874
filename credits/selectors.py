"""Reads of credits data, each already scoped to the caller."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Q, QuerySet, Sum

from accounts.models import Subscription, SubscriptionPlan
from config.exceptions import NotFound
from credits.models import CreditBalance, CreditPackage, CreditTransaction, Payment

TxType = CreditTransaction.Type


def balance_get(*, user) -> int:
    """The user's current balance (0 when they have never had a ledger row)."""
    value = CreditBalance.objects.filter(user_id=user.pk).values_list("balance", flat=True).first()
    return value or 0


def balance_summary(*, user) -> dict:
    """The balance and lifetime totals from the ledger (spent is net of nothing: gross usage)."""
    totals = CreditTransaction.objects.filter(user_id=user.pk).aggregate(
        purchased=Sum("amount", filter=Q(type=TxType.PURCHASE), default=0),
        spent=Sum("amount", filter=Q(type=TxType.USAGE), default=0),
        refunded=Sum("amount", filter=Q(type=TxType.REFUND), default=0),
        bonus=Sum("amount", filter=Q(type=TxType.BONUS), default=0),
        adjusted=Sum("amount", filter=Q(type=TxType.ADJUSTMENT), default=0),
    )
    return {
        "balance": balance_get(user=user),
        "lifetime_purchased": totals["purchased"],
        "lifetime_spent": -totals["spent"],
        "lifetime_refunded": totals["refunded"],
        "lifetime_bonus": totals["bonus"],
        "lifetime_adjusted": totals["adjusted"],
    }


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


def payment_get(*, user, payment_id) -> Payment:
    """The caller's payment; another user's (or no) payment → NotFound (404), indistinguishably."""
    payment = payment_list(user=user).filter(pk=payment_id).first()
    if payment is None:
        raise NotFound("Not found.")
    return payment


@dataclass(frozen=True)
class AuditMismatch:
    user_id: str
    email: str
    balance: int | None
    ledger_sum: int

    def __str__(self):
        return f"{self.email} ({self.user_id}): balance={self.balance} ledger_sum={self.ledger_sum}"


AUDIT_SQL = """
WITH sums AS (
    SELECT user_id, SUM(amount)::bigint AS total FROM {ledger} GROUP BY user_id
)
SELECT u.id, u.email, b.balance, COALESCE(s.total, 0)
FROM {balance} b
FULL OUTER JOIN sums s ON s.user_id = b.user_id
JOIN {user} u ON u.id = COALESCE(b.user_id, s.user_id)
WHERE COALESCE(b.balance, 0) <> COALESCE(s.total, 0) OR b.balance < 0 OR s.total < 0
ORDER BY u.email
"""


def credits_audit() -> list[AuditMismatch]:
    """Every user whose balance differs from SUM(ledger) or is negative (empty = books balance).

    One set-based query over the whole ledger, read in one snapshot (REPEATABLE READ is not
    needed: a single statement already sees one consistent snapshot).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            AUDIT_SQL.format(
                ledger=CreditTransaction._meta.db_table,
                balance=CreditBalance._meta.db_table,
                user=get_user_model()._meta.db_table,
            )
        )
        return [
            AuditMismatch(user_id=str(r[0]), email=r[1], balance=r[2], ledger_sum=r[3])
            for r in cursor.fetchall()
        ]


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
