"""Writes to credits. These functions are the only way a balance, a ledger row or a payment
changes; the jobs app calls `credits_charge` and `credits_refund` from its signals."""

from credits.services.ledger import (
    InsufficientCredits,
    balance_lock,
    credits_charge,
    credits_grant,
    credits_refund,
)
from credits.services.payments import (
    API_REFUND_PROVIDERS,
    FreePackageAlreadyClaimed,
    RefundRequest,
    payment_complete,
    payment_confirm_manually,
    payment_fail,
    payment_refund,
    payment_refund_manually,
    payment_refund_through_provider,
    payment_transition,
    purchase_start,
)
from credits.services.webhooks import WebhookResult, payment_webhook_receive

__all__ = [
    "API_REFUND_PROVIDERS",
    "FreePackageAlreadyClaimed",
    "InsufficientCredits",
    "RefundRequest",
    "WebhookResult",
    "balance_lock",
    "credits_charge",
    "credits_grant",
    "credits_refund",
    "payment_complete",
    "payment_confirm_manually",
    "payment_fail",
    "payment_refund",
    "payment_refund_manually",
    "payment_refund_through_provider",
    "payment_transition",
    "payment_webhook_receive",
    "purchase_start",
]
