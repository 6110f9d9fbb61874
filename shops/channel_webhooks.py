"""Inbound chat channels: LINE and Messenger webhooks, through the shared signed-webhook receiver
(`credits.webhook_receiver`, source `channels`): every delivery is logged once in WebhookLog, a
delivery is applied once (its log row claims the ids of its events), and each customer message
is stored once per conversation (unique provider message id), also when a channel redelivers
one event inside another batch.

One URL per integration (`/api/channels/<provider>/<integration_id>`), verified with that
integration's secret in the channel's own scheme:

- LINE: `X-Line-Signature` = base64(HMAC-SHA256(channel secret, body)), checked and parsed
  with line-bot-sdk's WebhookParser; message events become customer messages (`source.userId`
  is the customer handle; non-text messages are stored as `[image]`, `[sticker]`, …).
- Messenger: `X-Hub-Signature-256` = "sha256=" + hex(HMAC-SHA256(app secret, body)); the
  `messaging` events of entries for the integration's page (`account_id` = the Page ID) with a
  `message` become customer messages (`sender.id`, the page-scoped id, is the handle); echoes of
  the page's own messages, delivery and read receipts are acknowledged and ignored. The GET
  subscription handshake answers `hub.challenge` when `hub.verify_token` matches.

Unknown integration (or of another provider, or inactive) → 404; missing or wrong signature →
400/401; nothing is stored, every refusal is logged.
"""

import hashlib
import hmac
import logging

from config.signing import SignatureError
from credits.models import WebhookLog
from credits.webhook_receiver import (
    Event,
    EventError,
    WebhookHandler,
    WebhookResult,
    webhook_log,
    webhook_receive,
)
from shops.models import Conversation, SocialIntegration
from shops.services.chat import conversation_receive_message

logger = logging.getLogger(__name__)

SOURCE = "channels"
Outcome = WebhookLog.Outcome


def _integration(provider: str, integration_id) -> SocialIntegration | None:
    return (
        SocialIntegration.objects.select_related("shop")
        .filter(pk=integration_id, provider=provider, is_active=True)
        .first()
    )


def _delivery_id(integration: SocialIntegration, ids: list[str], body: bytes) -> str:
    """The id a delivery's log row claims: the integration and its one event, or a digest of its
    events' ids (a batch), or of the body (no event ids, e.g. LINE's empty "verify" call)."""
    if len(ids) == 1:
        key = ids[0][:200]
    elif ids:
        key = "batch:" + hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
    else:
        key = "body:" + hashlib.sha256(body).hexdigest()
    return f"{integration.pk}:{key}"


# --- LINE ---------------------------------------------------------------------------------------


def _line_handler(integration: SocialIntegration | None, signature: str) -> WebhookHandler:
    # line-bot-sdk takes most of a second to import: loaded by the first LINE call, so that
    # manage.py, the workers and the web processes start without it (shops.channels does the same).
    from linebot.v3.exceptions import InvalidSignatureError
    from linebot.v3.webhook import SignatureValidator, WebhookParser
    from linebot.v3.webhooks import MessageEvent, TextMessageContent

    def secret(provider):
        return None if integration is None else integration.channel_secret

    def verify(provider, headers, body, now):
        if not signature:
            raise SignatureError("missing_signature", "The X-Line-Signature header is missing.")
        if not integration.channel_secret:
            raise SignatureError("invalid_signature", "The integration has no channel secret.")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureError("invalid_signature", "The signature does not match the body.") from None
        if not SignatureValidator(integration.channel_secret).validate(text, signature):
            raise SignatureError("invalid_signature", "The signature does not match the body.")

    def parse(provider, payload, body):
        if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
            raise EventError("validation_error", "Expected a LINE webhook body with an events list.")
        try:
            # The SDK's own parser (the signature was checked above, with the same validator).
            events = WebhookParser(integration.channel_secret).parse(body.decode("utf-8"), signature)
        except (InvalidSignatureError, ValueError, KeyError, TypeError) as exc:
            raise EventError("validation_error", f"Not a LINE webhook body ({type(exc).__name__}).") from None
        ids = [e.get("webhookEventId") for e in payload["events"] if isinstance(e, dict)]
        ids = [i for i in ids if isinstance(i, str) and i]
        return Event(event_id=_delivery_id(integration, ids, body), type="line", data=events)

    def apply(provider, event):
        stored = replies = 0
        for item in event.data:
            if not isinstance(item, MessageEvent) or item.source is None:
                continue
            user_id = getattr(item.source, "user_id", None)
            if not user_id:
                continue  # group/room messages without a user are not a customer conversation
            content = item.message
            text = content.text if isinstance(content, TextMessageContent) else f"[{content.type}]"
            inbound, reply = conversation_receive_message(
                shop=integration.shop,
                channel=Conversation.Channel.LINE,
                customer_handle=user_id,
                text=text or f"[{content.type}]",
                integration=integration,
                provider_message_id=str(content.id),
            )
            stored += inbound is not None
            replies += reply is not None
        return _accepted(event, stored, replies)

    return WebhookHandler(source=SOURCE, secret=secret, parse=parse, apply=apply, verify=verify)


def line_webhook_receive(
    *, integration_id, body: bytes, headers: dict, body_too_large: bool = False
) -> WebhookResult:
    """One delivery to `POST /api/channels/line/<integration_id>` (see the module docstring)."""
    integration = _integration(SocialIntegration.Provider.LINE, integration_id)
    handler = _line_handler(integration, headers.get("x-line-signature", ""))
    return webhook_receive(
        handler=handler, provider="line", body=body, headers=headers, body_too_large=body_too_large
    )


# --- Messenger ----------------------------------------------------------------------------------


def _messenger_handler(integration: SocialIntegration | None) -> WebhookHandler:
    def secret(provider):
        return None if integration is None else integration.app_secret

    def verify(provider, headers, body, now):
        header = headers.get("x-hub-signature-256", "")
        if not header:
            raise SignatureError("missing_signature", "The X-Hub-Signature-256 header is missing.")
        if not header.startswith("sha256="):
            raise SignatureError("invalid_signature_header", "X-Hub-Signature-256 must be sha256=<hex>.")
        if not integration.app_secret:
            raise SignatureError("invalid_signature", "The integration has no app secret.")
        expected = hmac.new(integration.app_secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower()):
            raise SignatureError("invalid_signature", "The signature does not match the body.")

    def parse(provider, payload, body):
        if not isinstance(payload, dict) or payload.get("object") != "page":
            raise EventError("validation_error", 'Expected a Messenger webhook body ("object": "page").')
        entries = payload.get("entry")
        if not isinstance(entries, list):
            raise EventError("validation_error", "Expected an entry list.")
        messages, ids = [], []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("messaging"), list):
                continue
            for item in entry["messaging"]:
                if not isinstance(item, dict):
                    continue
                message = item.get("message")
                sender = (
                    (item.get("sender") or {}).get("id") if isinstance(item.get("sender"), dict) else None
                )
                if isinstance(message, dict) and isinstance(message.get("mid"), str):
                    ids.append(message["mid"])
                    if (
                        str(entry.get("id")) == integration.account_id
                        and not message.get("is_echo")
                        and isinstance(sender, str | int)
                    ):
                        messages.append((str(sender), message))
                else:
                    ids.append(f"{sender}:{item.get('timestamp')}")
        return Event(event_id=_delivery_id(integration, ids, body), type="page", data=messages)

    def apply(provider, event):
        stored = replies = 0
        for sender, message in event.data:
            text = message.get("text")
            if not isinstance(text, str) or not text:
                kinds = [a.get("type") for a in message.get("attachments") or [] if isinstance(a, dict)]
                text = f"[{kinds[0] if kinds and isinstance(kinds[0], str) else 'attachment'}]"
            inbound, reply = conversation_receive_message(
                shop=integration.shop,
                channel=Conversation.Channel.FACEBOOK,
                customer_handle=sender[:200],
                text=text[:5000],
                integration=integration,
                provider_message_id=message["mid"],
            )
            stored += inbound is not None
            replies += reply is not None
        return _accepted(event, stored, replies)

    return WebhookHandler(source=SOURCE, secret=secret, parse=parse, apply=apply, verify=verify)


def messenger_webhook_receive(
    *, integration_id, body: bytes, headers: dict, body_too_large: bool = False
) -> WebhookResult:
    """One delivery to `POST /api/channels/facebook/<integration_id>` (see the module docstring)."""
    integration = _integration(SocialIntegration.Provider.FACEBOOK, integration_id)
    return webhook_receive(
        handler=_messenger_handler(integration),
        provider="facebook",
        body=body,
        headers=headers,
        body_too_large=body_too_large,
    )


def messenger_subscription_verify(*, integration_id, params, headers: dict) -> tuple[int, str]:
    """Meta's subscription handshake (`GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`):
    (200, the challenge) when the token is the integration's verify token; (404, "") for an
    unknown integration, (403, "") otherwise. Logged like a delivery (never applied)."""
    integration = _integration(SocialIntegration.Provider.FACEBOOK, integration_id)
    mode, token = params.get("hub.mode", ""), params.get("hub.verify_token", "")
    challenge = params.get("hub.challenge", "")
    if integration is None:
        status, code, outcome = 404, "unknown_provider", Outcome.REJECTED
    elif (
        mode == "subscribe"
        and integration.verify_token
        and hmac.compare_digest(token.encode(), integration.verify_token.encode())
        and challenge
    ):
        status, code, outcome = 200, "", Outcome.PROCESSED
    else:
        status, code, outcome = 403, "invalid_verify_token", Outcome.INVALID_SIGNATURE
    webhook_log(
        source=SOURCE,
        provider="facebook",
        headers=headers,
        status_code=status,
        outcome=outcome,
        event_type="subscribe",
        error=f"{code}: the subscription handshake was refused" if code else "",
    )
    return status, (challenge if status == 200 else "")


def _accepted(event: Event, stored: int, replies: int) -> tuple[str, dict, dict]:
    outcome = Outcome.PROCESSED if stored else Outcome.IGNORED
    body = {"status": outcome, "event_id": event.event_id, "messages": stored, "auto_replies": replies}
    return outcome, body, {}
