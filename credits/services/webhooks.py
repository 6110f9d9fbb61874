"""Payment webhooks (SPEC §4): verify, parse, apply once, and log every delivery.

`payment_webhook_receive` is deliberately NOT wrapped in one transaction: the effect runs in
its own transaction, and the WebhookLog row is written after it, in autocommit, so a delivery
whose effect was rejected or rolled back is still on record.
"""

import json
import logging
import uuid
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from config.exceptions import ApplicationError
from config.signing import SignatureError
from credits.models import Payment, PaymentEvent, WebhookLog
from credits.providers import EventError, ProviderEvent, provider_get
from credits.services.payments import (
    payment_check_event_amount,
    payment_complete,
    payment_fail,
    payment_refund,
)

logger = logging.getLogger(__name__)

Outcome = WebhookLog.Outcome
MAX_LOGGED_BODY = 64 * 1024
LOGGED_HEADERS = ("content-type", "content-length", "user-agent", "x-signature", "x-request-id",
                  "x-forwarded-for")


@dataclass
class WebhookResult:
    """What the endpoint answers. `code` is set for refusals (4xx), `body` for acceptances."""

    status_code: int
    outcome: str
    code: str = ""
    message: str = ""
    body: dict = field(default_factory=dict)
    signature_valid: bool = False
    event: ProviderEvent | None = None
    payment_id: uuid.UUID | None = None


def payment_webhook_receive(*, provider: str, body: bytes, headers: dict, now: int | None = None,
                            body_too_large: bool = False) -> WebhookResult:
    """Handle one delivery to `POST /api/webhooks/payments/<provider>` and log it.

    Refusals (nothing changes, delivery logged): unknown provider 404 `unknown_provider`;
    a body over DATA_UPLOAD_MAX_MEMORY_SIZE 400 `request_too_large`;
    missing, malformed, stale (>300 s either way) or wrong signature 400/401; malformed JSON or
    event 400; unknown payment (or one of another provider) 404 `payment_not_found`; amount or
    currency mismatch 400 `amount_mismatch`/`currency_mismatch`.
    Acceptances (200): `processed`, `duplicate` (this event_id was already applied) or
    `ignored` (the payment is already past this event, e.g. a success after a refund).
    Effects happen at most once per event_id (PaymentEvent's unique key) and once per payment
    (status checks under the payment row lock plus the ledger's idempotency keys).
    """
    result = None
    try:
        if body_too_large:
            result = WebhookResult(400, Outcome.REJECTED, "request_too_large",
                                   "The request body is too large.")
        else:
            result = _process(provider, body, headers, now)
        return result
    finally:
        _log(provider, body, headers, result)


def _process(provider_code, body, headers, now) -> WebhookResult:
    provider = provider_get(provider_code)
    if provider is None:
        return WebhookResult(404, Outcome.REJECTED, "unknown_provider", "Unknown payment provider.")
    try:
        provider.verify_signature(headers.get("x-signature"), body, now=now)
    except SignatureError as exc:
        status_code = 400 if exc.code in ("missing_signature", "invalid_signature_header") else 401
        return WebhookResult(status_code, Outcome.INVALID_SIGNATURE, exc.code, exc.message)
    try:
        event = provider.parse_event(body)
    except EventError as exc:
        return WebhookResult(400, Outcome.REJECTED, exc.code, exc.message, signature_valid=True)
    try:
        return _apply(provider.code, event)
    except IntegrityError:
        # e.g. a transaction_id the provider already reported for another payment
        logger.warning("credits: webhook %s/%s conflicts with stored data", provider.code, event.event_id)
        return WebhookResult(409, Outcome.REJECTED, "conflict",
                             "The event conflicts with an existing payment.", signature_valid=True,
                             event=event, payment_id=_uuid(event.payment_id))
    except ApplicationError as exc:
        return WebhookResult(exc.status_code, Outcome.REJECTED, exc.code, exc.message, signature_valid=True,
                             event=event, payment_id=_uuid(event.payment_id))


def _apply(provider_code: str, event: ProviderEvent) -> WebhookResult:
    payment_id = _uuid(event.payment_id)

    def accepted(outcome, detail=""):
        body = {"status": outcome, "event_id": event.event_id, "payment_id": str(payment_id)}
        if detail:
            body["detail"] = detail
        return WebhookResult(200, outcome, body=body, signature_valid=True, event=event,
                             payment_id=payment_id)

    with transaction.atomic():
        payment = None
        if payment_id is not None:
            payment = (Payment.objects.select_for_update().select_related("package", "user")
                       .filter(pk=payment_id, provider=provider_code).first())
        if payment is None:
            raise ApplicationError("No such payment for this provider.", code="payment_not_found",
                                   status_code=404)
        payment_check_event_amount(payment=payment, amount=event.amount, currency=event.currency)
        try:
            with transaction.atomic():
                PaymentEvent.objects.create(provider=provider_code, event_id=event.event_id, type=event.type,
                                            payment=payment)
        except IntegrityError:
            return accepted(Outcome.DUPLICATE)
        try:
            if event.type == "payment.succeeded":
                transaction_id = event.transaction_id or f"{provider_code}:{event.event_id}"
                payment_complete(payment=payment, transaction_id=transaction_id[:255],
                                 receipt_url=event.receipt_url)
            elif event.type == "payment.failed":
                payment_fail(payment=payment, reason=event.failure_reason)
            else:
                payment_refund(payment=payment, reason=f"Refunded by {provider_code} ({event.event_id})")
        except ApplicationError as exc:
            if exc.status_code == 409:
                # The payment is already past this event (a success after a refund, a failure
                # after a success): acknowledge it so the provider stops retrying.
                return accepted(Outcome.IGNORED, exc.message)
            raise
    return accepted(Outcome.PROCESSED)


def _uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def _log(provider, body, headers, result: WebhookResult | None) -> None:
    # PostgreSQL text and jsonb refuse NUL characters, and jsonb refuses NaN/Infinity: such
    # deliveries are logged with the NULs replaced and without a parsed payload.
    raw = body[:MAX_LOGGED_BODY].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    payload = _loggable_json(body)
    event = result.event if result else None
    if result is None:  # an unexpected exception is propagating; record it before the 500
        outcome, status_code, error, signature_valid = Outcome.ERROR, 500, "Unexpected error", False
    else:
        outcome, status_code, signature_valid = result.outcome, result.status_code, result.signature_valid
        error = f"{result.code}: {result.message}" if result.code else result.body.get("detail", "")
    event_id = event.event_id if event else (payload.get("event_id") if isinstance(payload, dict) else "")
    event_type = event.type if event else (payload.get("type") if isinstance(payload, dict) else "")
    payment_id = result.payment_id if result else None
    if payment_id is not None and not Payment.objects.filter(pk=payment_id).exists():
        payment_id = None
    WebhookLog.objects.create(
        source=str(provider)[:32], event_id=event_id[:255] if isinstance(event_id, str) else "",
        event_type=event_type[:64] if isinstance(event_type, str) else "",
        headers={k: str(v)[:1000].replace("\x00", "") for k, v in headers.items() if k in LOGGED_HEADERS},
        payload=payload if isinstance(payload, dict | list) else None, raw_body=raw,
        signature_valid=signature_valid, outcome=outcome, status_code=status_code, error=error[:2000],
        payment_id=payment_id,
    )


def _loggable_json(body: bytes):
    if len(body) > MAX_LOGGED_BODY or b"\\u0000" in body or b"\x00" in body:
        return None
    try:
        payload = json.loads(body)
        json.dumps(payload, allow_nan=False)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return payload
