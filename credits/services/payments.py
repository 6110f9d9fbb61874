"""Purchases and payments: starting a checkout and applying what providers report.

Lock order, everywhere: the Payment row first, then (through the ledger) the user's balance
row, so a refund racing a completion can never deadlock. The credits a payment grants and
claws back go through the ledger with keys derived from the payment id
(`payment:<id>:purchase`, `payment:<id>:clawback`), so each happens at most once per payment
even if the status checks below were ever bypassed.
"""

import logging
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status

from accounts.services import subscription_activate, subscription_payment_failed
from config.exceptions import ApplicationError, Conflict, InvalidTransition
from credits.models import CreditPackage, CreditTransaction, Payment, Provider
from credits.providers import provider_get
from credits.services.ledger import _lock_balance, credits_grant

logger = logging.getLogger(__name__)

Status = Payment.Status


class FreePackageAlreadyClaimed(Conflict):
    code = "free_package_already_claimed"


def purchase_start(*, user, package: CreditPackage, provider: str | None = None) -> Payment:
    """Open a Payment for `package` and return it with the provider's checkout payload in
    `metadata["checkout"]`.

    Paid packages need a real provider and start `pending`; credits come when the provider
    reports success (webhook). A free package is paid with provider `free` (whatever was
    asked) and completes at once; it can be claimed once per user — the partial unique index
    on Payment decides under races — else FreePackageAlreadyClaimed (409).
    Raises ApplicationError (400) for an inactive package or an unusable provider, and the
    provider's refusal (`provider_unavailable` 400, `provider_error` 502) when its checkout
    cannot be created; then nothing persists. The provider is asked before the payment row is
    written, outside any transaction, so no lock waits on the gateway.
    """
    if not package.is_active:
        raise ApplicationError(
            "Invalid input.",
            code="validation_error",
            fields={"package_id": ["This package is not available."]},
        )
    if package.is_free:
        provider = Provider.FREE
    else:
        payment_check_provider(provider)
    payment = Payment(
        user=user,
        package=package,
        credits=package.credits,
        amount=package.price,
        currency=package.currency,
        provider=provider,
        status=Status.PENDING,
    )
    if provider != Provider.FREE:
        # The provider's checkout first, outside any transaction: a slow gateway holds no lock
        # (the payment row's insert would hold a key-share lock on the user row meanwhile).
        payment_checkout_fill(payment)
        payment.save(force_insert=True)
        return payment
    with transaction.atomic():  # a free package: claimed once, completed at once
        try:
            with transaction.atomic():
                payment.save(force_insert=True)
        except IntegrityError:
            raise FreePackageAlreadyClaimed("You have already claimed this free package.") from None
        payment_start_checkout(payment=payment)
        return payment_complete(payment=payment, transaction_id=f"free:{payment.id}")


def payment_check_provider(provider) -> None:
    """Raise ApplicationError (400, field `provider`) unless `provider` can take a paid payment."""
    if provider is None or provider == Provider.FREE or provider_get(provider) is None:
        raise ApplicationError(
            "Invalid input.",
            code="validation_error",
            fields={"provider": ["Choose a payment provider for a paid purchase."]},
        )


def payment_checkout_fill(payment: Payment) -> Payment:
    """Ask the payment's provider for its checkout (a Stripe Checkout Session, a Razorpay order,
    a PromptPay QR…) and put it in `metadata["checkout"]` with the gateway's id, on the
    instance only: the payment may not be saved yet (its id is). A refusal raises
    (`provider_unavailable` 400, `provider_error` 502). Call it outside a transaction where
    possible: it waits on the gateway's network round trip."""
    checkout = provider_get(payment.provider).start_checkout(payment)
    payment.metadata = {**(payment.metadata or {}), "checkout": checkout}
    payment.gateway_payment_id = str(
        checkout.get("checkout_session_id") or checkout.get("order_id") or checkout.get("reference") or ""
    )[:255]
    return payment


def payment_start_checkout(*, payment: Payment) -> Payment:
    """`payment_checkout_fill` for a saved payment, then store the checkout. Runs in the
    caller's transaction: a provider refusal raises (and rolls the payment back)."""
    payment_checkout_fill(payment)
    payment.save(update_fields=["metadata", "gateway_payment_id", "updated_at"])
    return payment


@transaction.atomic
def payment_complete(*, payment: Payment, transaction_id: str = "", receipt_url: str = "") -> Payment:
    """Mark the payment completed and apply what it bought, once: a package's credits (a
    `purchase` ledger row), or a plan's subscription (`accounts.services.subscription_activate`:
    started, or extended by a period, and linked to the payment).

    Locks the payment row, then the balance row (packages) or the user and subscription rows
    (plans). A payment already completed is returned
    unchanged (no second grant). Only pending, processing or failed payments can complete
    (a provider may report success after a failed attempt); a refunded or cancelled payment
    raises InvalidTransition (409) and grants nothing, so a refund that overtook the success
    notice wins.
    """
    payment = _lock(payment)
    if payment.status == Status.COMPLETED:
        return payment
    if payment.status not in (Status.PENDING, Status.PROCESSING, Status.FAILED):
        raise InvalidTransition(f"A {payment.status} payment cannot complete.")
    if payment.plan_id is not None:
        subscription = subscription_activate(user_id=payment.user_id, plan=payment.plan)
        payment.subscription = subscription
    else:
        credits_grant(
            user=payment.user,
            amount=payment.credits,
            type=CreditTransaction.Type.PURCHASE,
            idempotency_key=f"payment:{payment.id}:purchase",
            payment=payment,
            reason=f"{payment.package.name} via {payment.provider}",
        )
    payment.status = Status.COMPLETED
    payment.completed_at = timezone.now()
    payment.failure_reason = ""
    if transaction_id:
        payment.transaction_id = transaction_id
    if receipt_url:
        payment.receipt_url = receipt_url
    payment.save(
        update_fields=[
            "status",
            "completed_at",
            "failure_reason",
            "transaction_id",
            "receipt_url",
            "subscription",
            "updated_at",
        ]
    )
    return payment


@transaction.atomic
def payment_fail(*, payment: Payment, reason: str = "") -> Payment:
    """Mark a pending or processing payment failed (nothing was granted, nothing to undo).

    Locks the payment row. A payment already failed is returned unchanged; one that completed,
    was refunded or cancelled raises InvalidTransition (409): a late failure notice never
    undoes a success. A failed renewal makes its subscription `past_due` (grace period).
    """
    payment = _lock(payment)
    if payment.status == Status.FAILED:
        return payment
    if payment.status not in (Status.PENDING, Status.PROCESSING):
        raise InvalidTransition(f"A {payment.status} payment cannot fail.")
    payment.status = Status.FAILED
    payment.failed_at = timezone.now()
    payment.failure_reason = (reason or "Declined by the provider.")[:500]
    payment.save(update_fields=["status", "failed_at", "failure_reason", "updated_at"])
    if payment.subscription_id is not None and payment.period_start is not None:
        subscription_payment_failed(
            subscription_id=payment.subscription_id, period_start=payment.period_start
        )
    return payment


@transaction.atomic
def payment_refund(
    *,
    payment: Payment,
    reason: str = "",
    created_by=None,
    amount: Decimal | None = None,
    idempotency_key: str | None = None,
) -> Payment:
    """Refund a payment, in whole or (staff, with `amount`) in part, and claw back its credits
    in proportion, never below zero.

    Locks the payment row, then the balance row. The credits taken back after this refund are
    `credits × refunded_amount / amount` (rounded half up; all of them once fully refunded); if
    the user already spent some, only what is left is taken (an `adjustment` row) and the rest
    is added to `refund_shortfall`. The payment becomes `refunded` when the whole amount is;
    until then it stays `completed` with `refunded_amount` growing.

    Without `amount` (a provider's refund notice): refunds what is left. A refund that arrives
    before the success notice marks the payment refunded without touching credits, and the
    later success grants nothing; refunding a refunded payment returns it unchanged.
    With `amount`: only a completed payment can be refunded (InvalidTransition, 409), and the
    amount must be positive and at most what is left (ApplicationError `invalid_refund_amount`,
    400). A refund is applied at most once per `idempotency_key` (recorded on the payment).
    A free payment cannot be refunded (InvalidTransition, 409).
    A subscription payment has no credits to claw back; its subscription runs to the end of the
    period (staff cancel it in the admin if they must).
    """
    payment = _lock(payment)
    refunds = payment.metadata.get("refunds", [])
    if idempotency_key and any(r.get("key") == idempotency_key for r in refunds):
        return payment
    partial = amount is not None
    if payment.status == Status.REFUNDED and not partial:
        return payment
    if payment.provider == Provider.FREE:
        raise InvalidTransition("A free package has nothing to refund.")
    left = payment.amount - payment.refunded_amount
    if partial:
        if payment.status != Status.COMPLETED:
            raise InvalidTransition(f"A {payment.status} payment cannot be refunded.")
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0 or amount > left:
            raise ApplicationError(
                f"The refund must be more than 0 and at most {left} {payment.currency}.",
                code="invalid_refund_amount",
                fields={"amount": [f"Between 0.01 and {left}."]},
            )
    refunded_total = payment.refunded_amount + (amount if partial else left)
    clawback = 0
    if payment.status == Status.COMPLETED:
        if refunded_total >= payment.amount or not payment.amount:
            owed_total = payment.credits
        else:
            owed_total = int(
                (Decimal(payment.credits) * refunded_total / payment.amount).to_integral_value(ROUND_HALF_UP)
            )
        owed = owed_total - payment.credits_clawed_back - payment.refund_shortfall
        if owed > 0:
            _, balance = _lock_balance(payment.user_id)
            clawback = min(owed, balance)
            if clawback:
                # The first refund keeps the historical key; later (partial) ones are numbered.
                key = f"payment:{payment.id}:clawback" + (f":{len(refunds) + 1}" if refunds else "")
                credits_grant(
                    user=payment.user,
                    amount=-clawback,
                    type=CreditTransaction.Type.ADJUSTMENT,
                    idempotency_key=key,
                    payment=payment,
                    created_by=created_by,
                    reason=(reason or f"Refund of payment {payment.id}")[:500],
                )
            payment.refund_shortfall += owed - clawback
            if owed - clawback:
                logger.warning(
                    "credits: refund of payment %s could claw back only %s of %s credits",
                    payment.id,
                    clawback,
                    owed,
                )
    if refunded_total >= payment.amount:
        payment.status = Status.REFUNDED
    payment.refunded_at = timezone.now()
    payment.refunded_amount = refunded_total
    payment.credits_clawed_back += clawback
    payment.metadata = {
        **payment.metadata,
        "refunds": [
            *refunds,
            {
                "key": idempotency_key or "",
                "amount": str(amount if partial else left),
                "credits": clawback,
                "reason": (reason or "")[:500],
                "by": str(created_by.pk) if created_by is not None else None,
                "at": payment.refunded_at.isoformat(),
            },
        ],
    }
    payment.save(
        update_fields=[
            "status",
            "refunded_at",
            "refunded_amount",
            "credits_clawed_back",
            "refund_shortfall",
            "metadata",
            "updated_at",
        ]
    )
    return payment


def _lock(payment: Payment) -> Payment:
    return (
        Payment.objects.select_for_update(of=("self",))
        .select_related("package", "plan", "user")
        .get(pk=payment.pk)
    )


class PaymentMismatch(ApplicationError):
    status_code = status.HTTP_400_BAD_REQUEST


def payment_check_event_amount(*, payment: Payment, amount: Decimal, currency: str) -> None:
    """Raise PaymentMismatch (400) unless the provider's amount and currency are the payment's."""
    if currency.upper() != payment.currency.upper():
        raise PaymentMismatch(
            f"Currency {currency} does not match the payment's {payment.currency}.", code="currency_mismatch"
        )
    if amount != payment.amount:
        raise PaymentMismatch(
            f"Amount {amount} does not match the payment's {payment.amount}.", code="amount_mismatch"
        )
