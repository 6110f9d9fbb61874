"""Purchases and payments: starting a checkout and applying what providers report.

Lock order, everywhere: the Payment row first, then (through the ledger) the user's balance
row, so a refund racing a completion can never deadlock. The credits a payment grants and
claws back go through the ledger with keys derived from the payment id
(`payment:<id>:purchase`, `payment:<id>:clawback`), so each happens at most once per payment
even if the status checks below were ever bypassed.
"""

import logging
from decimal import Decimal

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
    cannot be created; then nothing persists.
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
    with transaction.atomic():
        try:
            with transaction.atomic():
                payment.save(force_insert=True)
        except IntegrityError:
            if provider != Provider.FREE:
                raise
            raise FreePackageAlreadyClaimed("You have already claimed this free package.") from None
        payment_start_checkout(payment=payment)
        if provider == Provider.FREE:
            payment = payment_complete(payment=payment, transaction_id=f"free:{payment.id}")
    return payment


def payment_check_provider(provider) -> None:
    """Raise ApplicationError (400, field `provider`) unless `provider` can take a paid payment."""
    if provider is None or provider == Provider.FREE or provider_get(provider) is None:
        raise ApplicationError(
            "Invalid input.",
            code="validation_error",
            fields={"provider": ["Choose a payment provider for a paid purchase."]},
        )


def payment_start_checkout(*, payment: Payment) -> Payment:
    """Ask the payment's provider for its checkout (a Stripe Checkout Session, a Razorpay order,
    a PromptPay QR…) and store it in `metadata["checkout"]` with the gateway's id. Runs in the
    caller's transaction, after the payment row is saved: a provider refusal raises (and rolls
    the payment back)."""
    checkout = provider_get(payment.provider).start_checkout(payment)
    payment.metadata = {**(payment.metadata or {}), "checkout": checkout}
    payment.gateway_payment_id = str(
        checkout.get("checkout_session_id") or checkout.get("order_id") or checkout.get("reference") or ""
    )[:255]
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
def payment_refund(*, payment: Payment, reason: str = "", created_by=None) -> Payment:
    """Refund the whole payment and claw back the credits it granted, never below zero.

    Locks the payment row, then the balance row. If the user already spent some of the
    credits, only what is left is taken back (an `adjustment` row) and the rest is recorded as
    `refund_shortfall`. A refund that arrives before the success notice marks the payment
    refunded without touching credits, and the later success grants nothing. Refunding twice
    returns the payment unchanged. A free payment cannot be refunded (InvalidTransition, 409).
    A subscription payment has no credits to claw back; its subscription runs to the end of the
    period (staff cancel it in the admin if they must).
    """
    payment = _lock(payment)
    if payment.status == Status.REFUNDED:
        return payment
    if payment.provider == Provider.FREE:
        raise InvalidTransition("A free package has nothing to refund.")
    clawback = 0
    if payment.status == Status.COMPLETED and payment.credits:
        _, balance = _lock_balance(payment.user_id)
        clawback = min(payment.credits, balance)
        if clawback:
            credits_grant(
                user=payment.user,
                amount=-clawback,
                type=CreditTransaction.Type.ADJUSTMENT,
                idempotency_key=f"payment:{payment.id}:clawback",
                payment=payment,
                created_by=created_by,
                reason=(reason or f"Refund of payment {payment.id}")[:500],
            )
        payment.refund_shortfall = payment.credits - clawback
        if payment.refund_shortfall:
            logger.warning(
                "credits: refund of payment %s could claw back only %s of %s credits",
                payment.id,
                clawback,
                payment.credits,
            )
    payment.status = Status.REFUNDED
    payment.refunded_at = timezone.now()
    payment.refunded_amount = payment.amount
    payment.credits_clawed_back = clawback
    payment.save(
        update_fields=[
            "status",
            "refunded_at",
            "refunded_amount",
            "credits_clawed_back",
            "refund_shortfall",
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
