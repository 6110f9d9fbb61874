"""The one signed-webhook receiver (payments, and external job workers' callbacks).

An app supplies a `WebhookHandler` (its secrets, how to read its events, how to apply one);
`webhook_receive` does the rest, the same way for every source:

1. the provider name must be a known one (404 `unknown_provider`, logged);
2. the `X-Signature` must be a valid, fresh signature of the raw body, or the provider's own
   scheme when the handler has one (Stripe, Razorpay) (400/401, logged with the body truncated
   to 4 KB plus its sha256 and length);
3. the body must be JSON without non-finite numbers (400 `parse_error`, logged); NUL characters
   and lone surrogates are replaced for storage, never a reason to lose the log row;
4. the handler's `parse` turns it into an event (400, logged);
5. in ONE transaction: the log row claims (source, provider, event_id) — a unique partial index —
   and the handler's `apply` runs; a crash rolls back both, so no effect is ever unlogged, and a
   redelivery (concurrent or later) finds the claim and is logged as `duplicate` without effect.
   A refusal by `apply` (ApplicationError) rolls back the effect and is logged on its own.

Every delivery leaves exactly one WebhookLog row, whatever happened. It lives in credits, with
WebhookLog, so that credits' payment handler and the apps above it (jobs) can use it without
`config` importing an app (docs/ARCHITECTURE.md, "Layers").
"""

import hashlib
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from rest_framework.response import Response

from config.exceptions import ApplicationError, error_body
from config.metrics import WEBHOOK_DELIVERIES
from config.parsers import json_loads
from config.signing import SignatureError, verify
from credits.models import Payment, WebhookLog

logger = logging.getLogger(__name__)

MAX_LOGGED_BODY = 64 * 1024
MAX_UNVERIFIED_BODY = 4 * 1024
LOGGED_HEADERS = (
    "content-type",
    "content-length",
    "user-agent",
    "x-signature",
    "stripe-signature",
    "x-razorpay-signature",
    "x-razorpay-event-id",
    "x-line-signature",
    "x-hub-signature-256",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-request-id",
    "x-forwarded-for",
)


class EventError(Exception):
    """The (signed) body is not a valid event: 400 with this code, logged as rejected."""

    def __init__(self, code: str, message: str, *, status_code: int = 400, fields: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.status_code, self.fields = code, message, status_code, fields


@dataclass
class Event:
    event_id: str
    type: str = ""
    data: object = None  # whatever the handler's parse produced


@dataclass
class WebhookResult:
    """What the endpoint answers: `code` set for refusals (4xx), `body` for acceptances."""

    status_code: int
    outcome: str
    code: str = ""
    message: str = ""
    body: dict = field(default_factory=dict)
    fields: dict | None = None
    signature_valid: bool = False
    event: Event | None = None
    links: dict = field(default_factory=dict)  # e.g. {"payment_id": ..., "job_id": ...} for the log
    logged: bool = False  # already logged in the effect's transaction


@dataclass(frozen=True)
class WebhookHandler:
    """What an app supplies. `secret(provider)` is None for an unknown provider and "" for a known
    one without a configured secret; `parse(provider, payload, body)` raises EventError; `apply(provider,
    event)` runs inside the receiver's transaction and returns (outcome, response body, links) or
    raises ApplicationError."""

    source: str
    secret: Callable[[str], str | None]
    parse: Callable[[str, object, bytes], Event]
    apply: Callable[[str, Event], tuple[str, dict, dict]]
    duplicate: Callable[[Event], dict] | None = None  # the 200 body for a redelivery
    # A provider's own signature scheme, (provider, headers, body, now) → raises SignatureError;
    # None = the generic `X-Signature` of config.signing with `secret(provider)`.
    verify: Callable[[str, dict, bytes, int | None], None] | None = None


def webhook_receive(
    *,
    handler: WebhookHandler,
    provider: str,
    body: bytes,
    headers: dict,
    now: int | None = None,
    body_too_large: bool = False,
) -> WebhookResult:
    """Receive one delivery for `handler.source` (see the module docstring). Never raises for
    bad input; always writes one WebhookLog row (an unexpected exception is logged as `error`
    and re-raised)."""
    Outcome = WebhookLog.Outcome
    result = None
    payload = None
    known_provider = False
    try:
        if body_too_large:
            result = WebhookResult(
                400, Outcome.REJECTED, "request_too_large", "The request body is too large."
            )
            return result
        secret = handler.secret(provider) if _plausible_name(provider) else None
        known_provider = secret is not None
        if secret is None:
            result = WebhookResult(404, Outcome.REJECTED, "unknown_provider", "Unknown provider.")
            return result
        try:
            if handler.verify is not None:
                handler.verify(provider, headers, body, now)
            else:
                verify(
                    headers.get("x-signature"),
                    body,
                    secret,
                    tolerance=settings.WEBHOOK_TOLERANCE_SECONDS,
                    now=now,
                )
        except SignatureError as exc:
            status_code = 400 if exc.code in ("missing_signature", "invalid_signature_header") else 401
            result = WebhookResult(status_code, Outcome.INVALID_SIGNATURE, exc.code, exc.message)
            return result
        try:
            payload = json_loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            result = WebhookResult(
                400,
                Outcome.REJECTED,
                "parse_error",
                "The body is not valid JSON (non-finite numbers are refused).",
                signature_valid=True,
            )
            return result
        payload = sanitize(payload)
        try:
            event = handler.parse(provider, payload, body)
        except EventError as exc:
            result = WebhookResult(
                exc.status_code,
                Outcome.REJECTED,
                exc.code,
                exc.message,
                fields=exc.fields,
                signature_valid=True,
            )
            return result
        event.event_id = sanitize(event.event_id)[:255]
        result = _apply_once(handler, provider, event, body, headers, payload)
        return result
    finally:
        if result is None or not result.logged:
            _log_safely(handler.source, provider, body, headers, payload, result)
        # A provider the app does not know is one label value, whatever the URL said.
        WEBHOOK_DELIVERIES.labels(
            source=handler.source,
            provider=provider if known_provider else "unknown",
            outcome=result.outcome if result is not None else "error",
        ).inc()


def webhook_response(result: WebhookResult) -> Response:
    """The HTTP answer for a result: the error envelope for refusals, the body for acceptances."""
    if result.code:
        return Response(error_body(result.code, result.message, result.fields), status=result.status_code)
    return Response(result.body, status=result.status_code)


def webhook_log(
    *,
    source: str,
    provider: str,
    headers: dict,
    status_code: int,
    outcome: str,
    event_type: str = "",
    error: str = "",
    body: bytes = b"",
) -> None:
    """Log a call to a webhook URL that is not a delivery of events (a provider's subscription
    handshake), in the same WebhookLog as the deliveries. Never applied, so it claims nothing."""
    result = WebhookResult(
        status_code,
        outcome,
        signature_valid=outcome == WebhookLog.Outcome.PROCESSED,
        event=Event(event_id="", type=event_type),
    )
    row = WebhookLog(
        **_log_fields(source, provider, body, headers, None, result),
        event_type=_text(event_type)[:64],
        signature_valid=result.signature_valid,
        outcome=outcome,
        status_code=status_code,
        error=_text(error)[:2000],
    )
    with transaction.atomic():
        row.save(force_insert=True)


def _apply_once(handler, provider, event, body, headers, payload) -> WebhookResult:
    Outcome = WebhookLog.Outcome
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    row = WebhookLog.objects.create(
                        **_log_fields(handler.source, provider, body, headers, payload, None),
                        event_id=event.event_id,
                        event_type=sanitize(event.type)[:64],
                        applied=True,
                        signature_valid=True,
                        outcome=Outcome.PROCESSED,
                        status_code=200,
                    )
            except IntegrityError:
                body = (
                    handler.duplicate(event)
                    if handler.duplicate
                    else {"status": Outcome.DUPLICATE, "event_id": event.event_id}
                )
                return WebhookResult(200, Outcome.DUPLICATE, body=body, signature_valid=True, event=event)
            outcome, response, links = handler.apply(provider, event)
            row.outcome = outcome
            row.error = str(response.get("detail", ""))[:2000]
            _set_links(row, links)
            row.save(update_fields=["outcome", "error", "payment", "job_id", "updated_at"])
    except ApplicationError as exc:
        return WebhookResult(
            exc.status_code,
            Outcome.REJECTED,
            exc.code,
            exc.message,
            fields=exc.fields,
            signature_valid=True,
            event=event,
        )
    except IntegrityError:
        logger.warning(
            "webhooks: %s/%s event %s conflicts with stored data", handler.source, provider, event.event_id
        )
        return WebhookResult(
            409,
            Outcome.REJECTED,
            "conflict",
            "The event conflicts with stored data.",
            signature_valid=True,
            event=event,
        )
    # Logged with its effect, in the same transaction: the finally clause must not log again.
    return WebhookResult(200, outcome, body=response, signature_valid=True, event=event, logged=True)


def _set_links(row, links: dict) -> None:
    payment_id = links.get("payment_id")
    if payment_id is not None and Payment.objects.filter(pk=payment_id).exists():
        row.payment_id = payment_id
    if links.get("job_id") is not None:
        row.job_id = links["job_id"]


def _plausible_name(provider) -> bool:
    return (
        isinstance(provider, str)
        and 0 < len(provider) <= 32
        and provider.isascii()
        and provider.replace("_", "").replace("-", "").isalnum()
    )


def sanitize(value):
    """A copy of a parsed JSON value that PostgreSQL text and jsonb can store: NUL characters and
    lone surrogates become U+FFFD (in keys too), non-finite floats become None."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {sanitize(str(k)): sanitize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitize(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _text(value: str) -> str:
    """`value` with each NUL and lone surrogate replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", value)


def _log_fields(source, provider, body: bytes, headers: dict, payload, result) -> dict:
    verified = result is None or result.signature_valid
    limit = MAX_LOGGED_BODY if verified else MAX_UNVERIFIED_BODY
    return {
        "source": source,
        "provider": _text(str(provider))[:32],
        "headers": {k: _text(str(v))[:1000] for k, v in headers.items() if k in LOGGED_HEADERS},
        "payload": payload if verified and isinstance(payload, dict | list) and len(body) <= limit else None,
        "raw_body": body[:limit].decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_length": len(body),
    }


def _log_safely(source, provider, body, headers, payload, result: WebhookResult | None) -> None:
    if result is None:  # an unexpected exception is propagating; record it before the 500
        result = WebhookResult(500, WebhookLog.Outcome.ERROR, "server_error", "Unexpected error")
    event = result.event
    error = f"{result.code}: {result.message}" if result.code else ""
    fields = _log_fields(source, provider, body, headers, payload, result)
    row = WebhookLog(
        **fields,
        event_id=event.event_id if event else _guess(payload, "event_id"),
        event_type=sanitize(event.type)[:64] if event else _guess(payload, "type")[:64],
        signature_valid=result.signature_valid,
        outcome=result.outcome,
        status_code=result.status_code,
        error=_text(error)[:2000],
    )
    _set_links(row, result.links)
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except DatabaseError:
        # Should not happen (everything above is sanitised); keep the delivery on record anyway.
        logger.exception("webhooks: could not log a %s/%s delivery in full", source, provider)
        WebhookLog.objects.create(
            source=source,
            provider=fields["provider"],
            outcome=result.outcome,
            status_code=result.status_code,
            body_sha256=fields["body_sha256"],
            body_length=fields["body_length"],
            error="log row truncated",
        )


def _guess(payload, name: str) -> str:
    value = payload.get(name) if isinstance(payload, dict) else None
    return sanitize(value)[:255] if isinstance(value, str) else ""
