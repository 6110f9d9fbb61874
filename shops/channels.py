"""Calls to the chat channels' APIs: one text message to one customer.

LINE goes through the official `line-bot-sdk` (v3, `MessagingApi.push_message`), Messenger
through the Graph API Send API over httpx (Meta publishes no Python SDK for it). The base URLs
come from settings, so a test points both at a local server that speaks the channel's protocol.

Each call returns a `SendResult` and never raises for an answer of the channel: the delivery
service (shops.services.delivery) decides what an answer means for the message.
"""

import email.utils
import json
import logging
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.utils import timezone
from urllib3.exceptions import HTTPError as Urllib3Error

logger = logging.getLogger(__name__)

LINE_MAX_TEXT = 5000
MESSENGER_MAX_TEXT = 2000


@dataclass(frozen=True)
class SendResult:
    """What the channel answered. `sent` with the channel's message id; otherwise `retryable`
    (429, 5xx, no answer) with the Retry-After seconds when the channel gave one, or
    `unauthorized` (the access token was refused), or a permanent refusal."""

    sent: bool
    provider_message_id: str = ""
    status_code: int | None = None
    retryable: bool = False
    unauthorized: bool = False
    retry_after: float | None = None
    error: str = ""


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None when absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def _classify(status_code: int, retry_after: str | None, error: str) -> SendResult:
    if status_code == 401:
        return SendResult(False, status_code=status_code, unauthorized=True, error=error)
    if status_code == 429 or status_code >= 500:
        return SendResult(
            False,
            status_code=status_code,
            retryable=True,
            retry_after=retry_after_seconds(retry_after),
            error=error,
        )
    return SendResult(False, status_code=status_code, error=error)


def line_push(*, access_token: str, to: str, text: str, retry_key: str) -> SendResult:
    """Push `text` to the LINE user `to` (POST /v2/bot/message/push, Bearer channel access token).

    `retry_key` (the message's UUID) goes in X-Line-Retry-Key: LINE accepts a key once, so a
    retry of a push whose answer was lost is answered 409 with the accepted request's id
    instead of sending the message twice; that 409 is a success.
    """
    # line-bot-sdk takes most of a second to import: loaded by the first push, so that manage.py,
    # the workers and the web processes start without it.
    from linebot.v3.messaging import (
        ApiClient,
        ApiException,
        Configuration,
        MessagingApi,
        PushMessageRequest,
        TextMessage,
    )

    configuration = Configuration(host=settings.LINE_API_BASE_URL, access_token=access_token)
    # No urllib3-level retries: retrying is the delivery service's job (with backoff, counted).
    configuration.retries = 0
    request = PushMessageRequest(to=to, messages=[TextMessage(text=text[:LINE_MAX_TEXT])])
    try:
        with ApiClient(configuration) as client:
            response = MessagingApi(client).push_message_with_http_info(
                request,
                x_line_retry_key=retry_key,
                _request_timeout=settings.CHANNEL_HTTP_TIMEOUT_SECONDS,
            )
    except ApiException as exc:
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        if exc.status == 409 and headers.get("x-line-accepted-request-id"):
            return SendResult(
                True, provider_message_id=headers["x-line-accepted-request-id"], status_code=409
            )
        return _classify(exc.status or 0, headers.get("retry-after"), _line_error(exc))
    except (Urllib3Error, OSError) as exc:
        return SendResult(False, retryable=True, error=f"LINE API unreachable: {type(exc).__name__}")
    sent = response.data.sent_messages if response.data is not None else None
    message_id = sent[0].id if sent else ""
    return SendResult(True, provider_message_id=message_id or "", status_code=response.status_code)


def _line_error(exc) -> str:
    """`exc`: the SDK's ApiException."""
    try:
        message = str(json.loads(exc.body or "{}").get("message", ""))
    except (ValueError, AttributeError, TypeError):
        message = ""
    return f"LINE API {exc.status}: {message or exc.reason or 'error'}"[:1000]


def messenger_send(*, access_token: str, recipient_id: str, text: str) -> SendResult:
    """Send `text` to the Messenger user `recipient_id` (the page-scoped id) through the Send API:
    POST /<version>/me/messages?access_token=<page token> with
    {"recipient": {"id"}, "messaging_type": "RESPONSE", "message": {"text"}}.

    A refused token is HTTP 401 or Graph error code 190 (OAuthException), whatever the status.
    """
    url = f"{settings.MESSENGER_GRAPH_API_BASE_URL}/{settings.MESSENGER_GRAPH_API_VERSION}/me/messages"
    body = {
        "recipient": {"id": recipient_id},
        "messaging_type": "RESPONSE",
        "message": {"text": text[:MESSENGER_MAX_TEXT]},
    }
    try:
        response = httpx.post(
            url,
            params={"access_token": access_token},
            json=body,
            timeout=settings.CHANNEL_HTTP_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        return SendResult(False, retryable=True, error=f"Messenger API unreachable: {type(exc).__name__}")
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    if response.status_code == 200 and payload.get("message_id"):
        return SendResult(True, provider_message_id=str(payload["message_id"])[:255], status_code=200)
    error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
    text_error = f"Messenger API {response.status_code}: {error.get('message') or 'error'}"[:1000]
    if error.get("code") == 190:
        return SendResult(False, status_code=response.status_code, unauthorized=True, error=text_error)
    if response.status_code == 200:
        return SendResult(False, status_code=200, error="Messenger API answered without a message id.")
    return _classify(response.status_code, response.headers.get("retry-after"), text_error)
