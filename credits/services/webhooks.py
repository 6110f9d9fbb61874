"""Payment webhooks: the payments handler of the shared receiver (`credits.webhook_receiver`).

The receiver verifies, logs every delivery and applies each (payments, provider, event_id) once,
in the transaction that writes its log row; this module says what a payment event is and what it
does.
"""

import uuid

from django.db import IntegrityError, transaction

from config.exceptions import ApplicationError
from credits.models import Payment, PaymentEvent, WebhookLog
from credits.providers import EventError as ProviderEventError
from credits.providers import provider_get
from credits.services.payments import (
    payment_check_event_amount,
    payment_check_event_currency,
    payment_complete,
    payment_fail,
    payment_refund,
)
from credits.webhook_receiver import Event, EventError, WebhookHandler, WebhookResult, webhook_receive

Outcome = WebhookLog.Outcome


def _secret(provider: str) -> str | None:
    found = provider_get(provider)
    return None if found is None else found.secret()


def _verify(provider: str, headers: dict, body: bytes, now: int | None) -> None:
    provider_get(provider).verify_webhook(headers, body, now=now)


def _parse(provider: str, payload, body: bytes) -> Event:
    try:
        event = provider_get(provider).parse_event(body)
    except ProviderEventError as exc:
        raise EventError(exc.code, exc.message) from None
    return Event(event_id=event.event_id, type=event.type, data=event)


def _apply(provider_code: str, wrapped: Event) -> tuple[str, dict, dict]:
    event = wrapped.data
    payment_id = _uuid(event.payment_id)
    if not event.type:
        # An event this provider sends that moves no money here: acknowledged, nothing done.
        return (
            Outcome.IGNORED,
            {"status": Outcome.IGNORED, "event_id": event.event_id, "detail": "Event type not handled."},
            {"payment_id": payment_id},
        )
    if payment_id is None and event.gateway_payment_id:
        payment_id = (
            Payment.objects.filter(provider=provider_code, gateway_payment_id=event.gateway_payment_id)
            .values_list("pk", flat=True)
            .first()
        )
    if payment_id is None and event.provider_payment_id:
        payment_id = (
            Payment.objects.filter(provider=provider_code, provider_payment_id=event.provider_payment_id)
            .values_list("pk", flat=True)
            .first()
        )
    links = {"payment_id": payment_id}

    def accepted(outcome, detail=""):
        body = {"status": outcome, "event_id": event.event_id, "payment_id": str(payment_id)}
        if detail:
            body["detail"] = detail
        return outcome, body, links

    payment = None
    if payment_id is not None:
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("package", "plan", "user")
            .filter(pk=payment_id, provider=provider_code)
            .first()
        )
    if payment is None:
        raise ApplicationError(
            "No such payment for this provider.", code="payment_not_found", status_code=404
        )
    if event.provider_refund_id:
        # One refund's notice: its own amount (at most what is left, checked by payment_refund).
        payment_check_event_currency(payment=payment, currency=event.currency)
    else:
        payment_check_event_amount(payment=payment, amount=event.amount, currency=event.currency)
    if event.provider_payment_id and not payment.provider_payment_id:
        # Kept for refunds through the provider's API (its refund call names this id).
        payment.provider_payment_id = event.provider_payment_id[:255]
        payment.save(update_fields=["provider_payment_id", "updated_at"])
    try:
        with transaction.atomic():
            applied = PaymentEvent.objects.create(
                provider=provider_code, event_id=event.event_id, type=event.type, payment=payment
            )
    except IntegrityError:
        return accepted(Outcome.DUPLICATE)
    try:
        with transaction.atomic():
            if event.type == "payment.succeeded":
                transaction_id = event.transaction_id or f"{provider_code}:{event.event_id}"
                payment_complete(
                    payment=payment, transaction_id=transaction_id[:255], receipt_url=event.receipt_url
                )
            elif event.type == "payment.failed":
                payment_fail(payment=payment, reason=event.failure_reason)
            elif event.provider_refund_id:
                # The key our refund request gave the provider, when it was ours: the notice and
                # the API answer of one staff refund are then one PaymentRefund row.
                key = event.refund_key or f"{provider_code}:refund:{event.provider_refund_id}"
                payment_refund(
                    payment=payment,
                    amount=event.amount,
                    reason=f"Refunded by {provider_code} ({event.provider_refund_id})",
                    idempotency_key=key[:255],
                    event=applied,
                    provider_refund_id=event.provider_refund_id,
                )
            else:
                payment_refund(
                    payment=payment,
                    reason=f"Refunded by {provider_code} ({event.event_id})",
                    idempotency_key=f"{provider_code}:event:{event.event_id}"[:255],
                    event=applied,
                )
    except ApplicationError as exc:
        if exc.status_code == 409:
            # The payment is already past this event (a success after a refund, a failure
            # after a success): acknowledge it so the provider stops retrying.
            return accepted(Outcome.IGNORED, exc.message)
        raise
    return accepted(Outcome.PROCESSED)


PAYMENTS = WebhookHandler(source="payments", secret=_secret, parse=_parse, apply=_apply, verify=_verify)


def payment_webhook_receive(
    *, provider: str, body: bytes, headers: dict, now: int | None = None, body_too_large: bool = False
) -> WebhookResult:
    """Handle one delivery to `POST /api/webhooks/payments/<provider>` (credits.webhook_receiver).

    Refusals (nothing changes, delivery logged): unknown provider 404 `unknown_provider`;
    a body over DATA_UPLOAD_MAX_MEMORY_SIZE 400 `request_too_large`; missing, malformed, stale
    (>300 s either way) or wrong signature 400/401; malformed JSON (non-finite numbers included)
    or event 400; unknown payment (or one of another provider) 404 `payment_not_found`; amount or
    currency mismatch 400; a transaction id reported for another payment 409 `conflict`.
    Acceptances (200): `processed`, `duplicate` (this event_id was already applied) or
    `ignored` (the payment is already past this event, e.g. a success after a refund).
    Effects happen at most once per event_id (the log row's claim, PaymentEvent's unique key)
    and once per payment (status checks under the payment row lock, ledger idempotency keys).
    """
    return webhook_receive(
        handler=PAYMENTS,
        provider=provider,
        body=body,
        headers=headers,
        now=now,
        body_too_large=body_too_large,
    )


def _uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None
