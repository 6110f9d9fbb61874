"""Reads of credits data, each already scoped to the caller."""

from credits.models import CreditBalance


def balance_get(*, user) -> int:
    """The user's current balance (0 when they have never had a ledger row)."""
    value = CreditBalance.objects.filter(user_id=user.pk).values_list("balance", flat=True).first()
    return value or 0
