"""Purchases and payments: starting a checkout and applying what providers report.

Every status change goes through `payment_transition` (the table is in credits/states.py; a
trigger on the payments table refuses any other status write); `payment_complete`,
`payment_fail` and `payment_refund` say what a provider's notice or a staff action means and
call it. Lock order, everywhere: the Payment row first, then (through the ledger) the user's
balance row — or, for a plan, the user row then the subscription row — so a refund racing a
completion can never deadlock. The credits a payment grants and claws back go through the ledger
with keys derived from the payment id (`payment:<id>:purchase`, `payment:<id>:clawback`), so each
happens at most once per payment even if the status checks were ever bypassed; each refund is a
PaymentRefund row with a unique key.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status

from accounts.services import subscription_activate, subscription_payment_failed
from config.exceptions import ApplicationError, Conflict, InvalidTransition
from credits.emails import payment_received_email
from credits.models import (
    MANUAL_PROVIDERS,
    CreditPackage,
    CreditTransaction,
    ManualPaymentRecord,
    Payment,
    PaymentEvent,
    PaymentRefund,
    Provider,
)
from credits.providers import provider_get
from credits.services.ledger import balance_lock, credits_grant
from credits.services.receipts import receipt_issue
from credits.signals import payment_completed, payment_failed
from credits.states import PAYMENT_MACHINE

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


def payment_renewal_checkout(*, payment: Payment, what: str) -> Payment:
    """Start the checkout of a just-opened renewal payment in a transaction of its own; a provider
    refusal fails the payment (so what it renews goes past due) instead of raising. `what` names
    the renewed thing in the log. Returns the payment as it now stands."""
    try:
        with transaction.atomic():
            return payment_start_checkout(payment=payment)
    except ApplicationError as exc:
        logger.warning("%s: renewal checkout of payment %s failed: %s", what, payment.pk, exc.message)
        return payment_fail(payment=payment, reason=f"Checkout could not be created: {exc.message}")


@dataclass(frozen=True)
class RefundRequest:
    """What one refund is: how much money goes back, under which key, and where it came from
    (a provider's refund notice `event`, or a staff member `created_by`)."""

    amount: Decimal
    idempotency_key: str
    reason: str = ""
    created_by: object = None
    event: PaymentEvent | None = None
    provider_refund_id: str | None = None


@transaction.atomic
def payment_transition(
    *,
    payment: Payment,
    to: str,
    transaction_id: str = "",
    receipt_url: str = "",
    failure_reason: str = "",
    refund: RefundRequest | None = None,
    now: datetime | None = None,
) -> Payment:
    """The only writer of `Payment.status` (a trigger refuses every other write): move the
    payment to `to` and perform the move's effect, in one transaction.

    Locks the payment row, then what the effect needs (the balance row for credits; the user
    and subscription rows for a plan). Raises InvalidTransition (409) unless PAYMENT_TRANSITIONS
    (credits/states.py) allows the move — moving to the status it already has included, so an
    effect can never run twice. Effects:

    - `completed`: a package's credits (a `purchase` ledger row, key `payment:<id>:purchase`) or a
      plan's subscription (`accounts.services.subscription_activate`: started, or extended by a
      period); stamps completed_at and the provider's transaction id and receipt.
    - `failed`: stamps failed_at and the reason; a renewal payment puts its subscription
      `past_due` (`accounts.services.subscription_payment_failed`).
    - `refunded`: `refund` (required) gives back what is left of the amount as a PaymentRefund
      row, clawing back the credits still owed, never below zero (the rest is the shortfall).
    - a payment with a `purpose` (bought for a higher layer): completing or failing it sends
      `credits.signals.payment_completed` / `payment_failed` in this transaction, whose receivers
      apply the effect (e.g. a shop plan's activation).
    - `processing`, `cancelled`: the status only.
    """
    now = now or timezone.now()
    payment = _lock(payment)
    PAYMENT_MACHINE.check(payment.status, to)
    fields = ["status", "updated_at"]
    if to == Status.COMPLETED:
        if payment.plan_id is not None:
            payment.subscription = subscription_activate(user_id=payment.user_id, plan=payment.plan)
        elif payment.purpose:
            pass  # a higher layer's purchase: `payment_completed` below applies it
        else:
            credits_grant(
                user=payment.user,
                amount=payment.credits,
                type=CreditTransaction.Type.PURCHASE,
                idempotency_key=f"payment:{payment.id}:purchase",
                payment=payment,
                reason=f"{payment.package.name} via {payment.provider}",
            )
        payment.completed_at = now
        receipt_issue(payment=payment, now=now)
        payment_received_email(payment=payment)
        payment.failure_reason = ""
        payment.transaction_id = transaction_id or payment.transaction_id
        payment.receipt_url = receipt_url or payment.receipt_url
        fields += ["completed_at", "failure_reason", "transaction_id", "receipt_url", "subscription"]
    elif to == Status.FAILED:
        payment.failed_at = now
        payment.failure_reason = (failure_reason or "Declined by the provider.")[:500]
        fields += ["failed_at", "failure_reason"]
    elif to == Status.REFUNDED:
        if refund is None or refund.amount != payment.amount - payment.refunded_amount:
            raise ValueError("A move to refunded refunds exactly what is left of the amount.")
        _refund_record(payment=payment, refund=refund, now=now)
        fields += REFUND_TOTALS
    PAYMENT_MACHINE.authorise(payment.pk)
    payment.status = to
    payment.save(update_fields=fields)
    if to == Status.FAILED and payment.subscription_id is not None and payment.period_start is not None:
        subscription_payment_failed(
            subscription_id=payment.subscription_id, period_start=payment.period_start
        )
    if payment.purpose and to in (Status.COMPLETED, Status.FAILED):
        signal = payment_completed if to == Status.COMPLETED else payment_failed
        signal.send(sender=Payment, payment=payment, now=now)
    return payment


@transaction.atomic
def payment_complete(*, payment: Payment, transaction_id: str = "", receipt_url: str = "") -> Payment:
    """A provider reported success: `payment_transition` to `completed` (the credits or the
    subscription, once). A payment already completed is returned unchanged (no second grant).
    Only pending, processing or failed payments can complete (a provider may report success
    after a failed attempt); a refunded or cancelled one raises InvalidTransition (409) and
    grants nothing, so a refund that overtook the success notice wins. Locks the payment row.
    """
    payment = _lock(payment)
    if payment.status == Status.COMPLETED:
        return payment
    return payment_transition(
        payment=payment, to=Status.COMPLETED, transaction_id=transaction_id, receipt_url=receipt_url
    )


@transaction.atomic
def payment_fail(*, payment: Payment, reason: str = "") -> Payment:
    """A provider reported a failure: `payment_transition` to `failed` (nothing was granted,
    nothing to undo; a failed renewal makes its subscription `past_due`). A payment already failed
    is returned unchanged; one that completed, was refunded or cancelled raises InvalidTransition
    (409): a late failure notice never undoes a success. Locks the payment row.
    """
    payment = _lock(payment)
    if payment.status == Status.FAILED:
        return payment
    return payment_transition(payment=payment, to=Status.FAILED, failure_reason=reason)


@transaction.atomic
def payment_refund(
    *,
    payment: Payment,
    reason: str = "",
    created_by=None,
    amount: Decimal | None = None,
    idempotency_key: str | None = None,
    event: PaymentEvent | None = None,
    provider_refund_id: str | None = None,
) -> Payment:
    """Refund a payment, in whole or (staff, with `amount`) in part, and claw back its credits
    in proportion, never below zero. Each refund is one PaymentRefund row.

    Locks the payment row, then the balance row. The credits taken back after this refund are
    `credits × refunded_amount / amount` (rounded half up; all of them once fully refunded); if
    the user already spent some, only what is left is taken (an `adjustment` row) and the rest
    is the refund's `shortfall`, added to the payment's `refund_shortfall`. The refund that
    completes the amount is `payment_transition` to `refunded`; until then the payment stays
    `completed` with `refunded_amount` growing.

    Without `amount` (a provider's refund notice): refunds what is left. A refund that arrives
    before the success notice marks the payment refunded without touching credits, and the
    later success grants nothing; refunding a refunded payment returns it unchanged.
    With `amount`: only a completed payment can be refunded (InvalidTransition, 409), and the
    amount must be positive and at most what is left (ApplicationError `invalid_refund_amount`,
    400). A refund is applied at most once per `idempotency_key` and once per
    `provider_refund_id` (unique on the rows; a replay returns the payment unchanged).
    A refund named by `provider_refund_id` on a payment already wholly refunded is returned
    unchanged: a notice of the whole charge refunded applied it first.
    A free payment cannot be refunded, nor a cancelled one (InvalidTransition, 409).
    A subscription payment has no credits to claw back; its subscription runs to the end of the
    period (staff cancel it in the admin if they must).
    """
    payment = _lock(payment)
    if idempotency_key and PaymentRefund.objects.filter(idempotency_key=idempotency_key).exists():
        return payment
    if provider_refund_id and (
        PaymentRefund.objects.filter(payment=payment, provider_refund_id=provider_refund_id).exists()
        # A notice of the whole charge refunded (Stripe's `charge.refunded`) got here first and
        # gave back everything, this refund included.
        or payment.status == Status.REFUNDED
    ):
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
    refund = RefundRequest(
        amount=amount if partial else left,
        idempotency_key=idempotency_key or f"payment:{payment.id}:refund:{payment.refunds.count() + 1}",
        reason=(reason or "")[:500],
        created_by=created_by,
        event=event,
        provider_refund_id=provider_refund_id or None,
    )
    if refund.amount == left:
        return payment_transition(payment=payment, to=Status.REFUNDED, refund=refund)
    _refund_record(payment=payment, refund=refund, now=timezone.now())
    payment.save(update_fields=["updated_at", *REFUND_TOTALS])
    return payment


# The providers whose refund API a staff refund calls; the others' money is refunded by hand.
API_REFUND_PROVIDERS = (Provider.STRIPE, Provider.RAZORPAY)


def payment_refund_through_provider(
    *, payment: Payment, amount: Decimal, key: str, reason: str, created_by
) -> tuple[Payment, str]:
    """A staff refund of `amount` of a Stripe or Razorpay payment: the provider's refund API
    (through its SDK) sends the money back, then `payment_refund` applies it here.

    Returns (payment, the provider's refund id). `key` names this one request (the admin form's
    token): it is the provider's idempotency key (Stripe), goes into the refund's metadata/notes,
    and is the PaymentRefund key, so the API answer and the provider's refund notice — whichever
    comes first, however often — apply the refund once, and resubmitting the same request neither
    asks the provider again nor refunds twice.

    Checks first, without asking the provider: the payment must be completed (InvalidTransition,
    409), of a provider with a refund API (ApplicationError `manual_refund_required`, 400), with
    its provider payment id known (`provider_payment_unknown`, 409), and `amount` within what is
    left (`invalid_refund_amount`, 400). A provider's refusal raises ProviderRefused (409, its
    reason in the message) or ProviderFailed (502) and changes nothing. No row lock is held while
    the provider answers (its refund notice may arrive and be applied meanwhile).
    """
    existing = PaymentRefund.objects.filter(payment=payment, idempotency_key=key).first()
    if existing is not None:
        return Payment.objects.get(pk=payment.pk), existing.provider_refund_id or ""
    payment = Payment.objects.select_related("package", "plan", "user").get(pk=payment.pk)
    if payment.provider not in API_REFUND_PROVIDERS:
        raise ApplicationError(
            f"{payment.get_provider_display()} has no refund API: refund the money by hand and record it.",
            code="manual_refund_required",
        )
    if payment.status != Status.COMPLETED:
        raise InvalidTransition(f"A {payment.status} payment cannot be refunded.")
    if not payment.provider_payment_id:
        raise Conflict(
            "The provider's payment id is unknown (no success notice stored it): refund it in the "
            "provider's dashboard; its refund notice will be applied here.",
            code="provider_payment_unknown",
        )
    left = payment.amount - payment.refunded_amount
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0 or amount > left:
        raise ApplicationError(
            f"The refund must be more than 0 and at most {left} {payment.currency}.",
            code="invalid_refund_amount",
            fields={"amount": [f"Between 0.01 and {left}."]},
        )
    answer = provider_get(payment.provider).refund(payment, amount=amount, key=key, reason=reason)
    payment = payment_refund(
        payment=payment,
        amount=amount,
        reason=reason,
        created_by=created_by,
        idempotency_key=key,
        provider_refund_id=answer.refund_id,
    )
    return payment, answer.refund_id


def _check_manual(payment: Payment, reference: str) -> str:
    if payment.provider not in MANUAL_PROVIDERS:
        raise ApplicationError(
            f"A {payment.get_provider_display()} payment is settled by its provider, not by hand.",
            code="not_a_manual_payment",
        )
    reference = (reference or "").strip()
    if not reference:
        raise ApplicationError(
            "Invalid input.",
            code="validation_error",
            fields={"reference": ["Give the transfer's reference."]},
        )
    return reference[:255]


@transaction.atomic
def payment_confirm_manually(
    *, payment: Payment, reference: str, confirmed_by, slip=None, note: str = ""
) -> tuple[Payment, bool]:
    """Finance staff saw the money of a PromptPay, TrueMoney or bank-transfer payment arrive:
    complete it through `payment_transition` (the credits or the subscription, once) and write its
    ManualPaymentRecord (reference, optional slip image, who) in the same transaction.

    Returns (payment, whether this call confirmed it). Confirming a payment already completed (a
    second click, a second staff member) returns it unchanged with False: one confirmation per
    payment, held by a partial unique index. Locks the payment row. Raises ApplicationError
    `not_a_manual_payment` (400) for a provider with its own notices, `validation_error` (400)
    without a reference, Conflict `reference_used` (409) when the reference already confirmed
    another payment, InvalidTransition (409) for a refunded or cancelled payment."""
    reference = _check_manual(payment, reference)
    payment = _lock(payment)
    if payment.status == Status.COMPLETED:
        return payment, False
    transaction_id = f"{payment.provider}:{reference}"[:255]
    if Payment.objects.filter(transaction_id=transaction_id).exclude(pk=payment.pk).exists():
        raise Conflict("This reference already confirmed another payment.", code="reference_used")
    payment = payment_transition(payment=payment, to=Status.COMPLETED, transaction_id=transaction_id)
    ManualPaymentRecord.objects.create(
        payment=payment,
        action=ManualPaymentRecord.Action.CONFIRM,
        amount=payment.amount,
        reference=reference,
        slip=slip or "",
        note=(note or "")[:500],
        created_by=confirmed_by,
    )
    return payment, True


@transaction.atomic
def payment_refund_manually(
    *,
    payment: Payment,
    amount: Decimal,
    reference: str,
    key: str,
    refunded_by,
    reason: str = "",
    slip=None,
) -> tuple[Payment, bool]:
    """Finance staff sent (part of) a PromptPay, TrueMoney or bank-transfer payment back by hand:
    `payment_refund` (credits clawed back in proportion, never below zero) plus its
    ManualPaymentRecord (reference, optional slip), in one transaction. Returns (payment, whether
    this call refunded): once per `key` (the admin form's token). Raises as `payment_refund`
    does, and as `payment_confirm_manually` for the provider and the reference."""
    reference = _check_manual(payment, reference)
    payment = _lock(payment)
    if PaymentRefund.objects.filter(idempotency_key=key).exists():
        return payment, False
    payment = payment_refund(
        payment=payment, amount=amount, reason=reason, created_by=refunded_by, idempotency_key=key
    )
    ManualPaymentRecord.objects.create(
        payment=payment,
        action=ManualPaymentRecord.Action.REFUND,
        amount=amount,
        reference=reference,
        slip=slip or "",
        note=(reason or "")[:500],
        refund=PaymentRefund.objects.get(idempotency_key=key),
        created_by=refunded_by,
    )
    return payment, True


# The payment's running refund totals, written with each PaymentRefund row.
REFUND_TOTALS = ["refunded_at", "refunded_amount", "credits_clawed_back", "refund_shortfall"]


def _refund_record(*, payment: Payment, refund: RefundRequest, now: datetime) -> PaymentRefund:
    """Write one refund of the locked `payment`: claw back the credits it makes owed (never below
    zero: locks the balance row and takes at most the balance), insert its PaymentRefund row and
    update the payment's totals on the instance (the caller saves them in its transaction)."""
    refunded_total = payment.refunded_amount + refund.amount
    clawback = owed = 0
    ledger_entry = None
    if payment.status == Status.COMPLETED:
        if refunded_total >= payment.amount or not payment.amount:
            owed_total = payment.credits
        else:
            owed_total = int(
                (Decimal(payment.credits) * refunded_total / payment.amount).to_integral_value(ROUND_HALF_UP)
            )
        owed = max(owed_total - payment.credits_clawed_back - payment.refund_shortfall, 0)
        if owed:
            _, balance = balance_lock(user_id=payment.user_id)
            clawback = min(owed, balance)
            if clawback:
                # The first refund keeps the historical key; later (partial) ones are numbered.
                earlier = payment.refunds.count()
                ledger_entry = credits_grant(
                    user=payment.user,
                    amount=-clawback,
                    type=CreditTransaction.Type.ADJUSTMENT,
                    idempotency_key=f"payment:{payment.id}:clawback" + (f":{earlier + 1}" if earlier else ""),
                    payment=payment,
                    created_by=refund.created_by,
                    reason=(refund.reason or f"Refund of payment {payment.id}")[:500],
                )
            if owed - clawback:
                logger.warning(
                    "credits: refund of payment %s could claw back only %s of %s credits",
                    payment.id,
                    clawback,
                    owed,
                )
    row = PaymentRefund.objects.create(
        payment=payment,
        amount=refund.amount,
        credits_clawed_back=clawback,
        shortfall=owed - clawback,
        idempotency_key=refund.idempotency_key,
        provider_refund_id=refund.provider_refund_id,
        event=refund.event,
        created_by=refund.created_by,
        ledger_entry=ledger_entry,
        reason=refund.reason,
    )
    payment.refunded_at = now
    payment.refunded_amount = refunded_total
    payment.credits_clawed_back += clawback
    payment.refund_shortfall += owed - clawback
    return row


def _lock(payment: Payment) -> Payment:
    return (
        Payment.objects.select_for_update(of=("self",))
        .select_related("package", "plan", "user")
        .get(pk=payment.pk)
    )


class PaymentMismatch(ApplicationError):
    status_code = status.HTTP_400_BAD_REQUEST


def payment_check_event_currency(*, payment: Payment, currency: str) -> None:
    """Raise PaymentMismatch (400) unless the provider's currency is the payment's."""
    if currency.upper() != payment.currency.upper():
        raise PaymentMismatch(
            f"Currency {currency} does not match the payment's {payment.currency}.", code="currency_mismatch"
        )


def payment_check_event_amount(*, payment: Payment, amount: Decimal, currency: str) -> None:
    """Raise PaymentMismatch (400) unless the provider's amount and currency are the payment's."""
    payment_check_event_currency(payment=payment, currency=currency)
    if amount != payment.amount:
        raise PaymentMismatch(
            f"Amount {amount} does not match the payment's {payment.amount}.", code="amount_mismatch"
        )
