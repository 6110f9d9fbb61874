"""Writes to credits. These functions are the only way a balance, a ledger row or a payment
changes; the jobs app calls `credits_charge` and `credits_refund` from its signals."""

from credits.services.ledger import (
    InsufficientCredits,
    credits_charge,
    credits_grant,
    credits_refund,
)

__all__ = [
    "InsufficientCredits",
    "credits_charge",
    "credits_grant",
    "credits_refund",
]
