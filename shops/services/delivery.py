"""Delivery of outbound chat messages to the customer's channel.

Every staff, bot and ai message is written `pending`. Where it goes from there depends on its
conversation:

- a conversation with a channel integration (LINE, Messenger: the customer wrote through its
  webhook) is delivered by the `shops.deliver_message` Celery task, queued after commit, through
  the channel's API (shops.channels);
- any other conversation is delivered by the shop's own connector, which reads the outbound feed
  and acknowledges each message (`message_acknowledge`).

At most once: a task first claims the message with one conditional UPDATE (still `pending`, not
claimed, due), so of two tasks for one message — a redelivered Celery message, a re-announce —
only one calls the channel; the other finds the claim and does nothing. The outcome is written
only by the attempt that holds the claim. A message once `sent` is never sent again.
"""

import logging
import math
import random
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.emails import email_send_after_commit
from config.exceptions import ApplicationError, Conflict, NotFound
from config.failures import failure_report
from config.metrics import channel_delivery_record
from config.outside_calls import outside_call
from shops import channels
from shops.models import Message, SocialIntegration

logger = logging.getLogger(__name__)

DELIVERING_PROVIDERS = (SocialIntegration.Provider.LINE, SocialIntegration.Provider.FACEBOOK)
Status = Message.DeliveryStatus


def delivered_by_task(message: Message) -> bool:
    """True when the message goes out through a channel integration (not a connector)."""
    return message.direction == Message.Direction.OUTBOUND and message.conversation.integration_id is not None


def message_delivery_schedule(*, message: Message) -> None:
    """Queue the delivery task for `message` once the current transaction commits (nothing is
    queued for a connector's message, or when the transaction rolls back). A broker that is down
    is logged, not raised: the message stays `pending` and `message_delivery_reannounce` queues it
    again."""
    if not delivered_by_task(message):
        return
    transaction.on_commit(lambda: _enqueue(message.pk))


def _enqueue(message_id, countdown: float | None = None) -> None:
    from shops.tasks import deliver_message  # the task module imports the services

    if countdown:  # whole seconds: RabbitMQ's delayed delivery refuses a delay under one
        countdown = math.ceil(countdown)
    try:
        deliver_message.apply_async(args=[str(message_id)], countdown=countdown)
    except Exception:
        logger.exception("could not queue the delivery of message %s", message_id)


def delivery_delay(*, attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt `attempt + 1`: exponential backoff from
    CHANNEL_DELIVERY_BACKOFF_SECONDS, capped at CHANNEL_DELIVERY_BACKOFF_MAX_SECONDS, with jitter
    (a uniform draw between half and all of it), and never less than the channel's Retry-After."""
    rng = rng or random
    base = settings.CHANNEL_DELIVERY_BACKOFF_SECONDS * (2 ** max(0, attempt - 1))
    capped = min(settings.CHANNEL_DELIVERY_BACKOFF_MAX_SECONDS, base)
    delay = rng.uniform(capped / 2, capped)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def message_deliver(*, message_id) -> str:
    """Deliver one outbound message through its conversation's integration. Returns what
    happened: `sent`, `failed`, `retry` (a new attempt is queued), or `skipped` (not pending, not
    due, already claimed by another task, or a connector's message).

    Claims the message with a conditional UPDATE (no lock is held during the call to the
    channel). Outcomes: the channel's message id and `sent`; 429/5xx/no answer retried with
    backoff (attempts < CHANNEL_DELIVERY_MAX_ATTEMPTS), then `failed`; 401 `failed` and the
    integration marked `needs_reauth` (its shop's owner emailed once); any other refusal `failed`.
    """
    now = timezone.now()
    claimed = (
        Message.objects.filter(
            pk=message_id,
            direction=Message.Direction.OUTBOUND,
            delivery_status=Status.PENDING,
            delivering_since__isnull=True,
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(delivering_since=now, attempts=F("attempts") + 1, updated_at=now)
    )
    if not claimed:
        return "skipped"
    message = Message.objects.select_related("conversation__integration__shop__owner").get(pk=message_id)
    integration = message.conversation.integration
    if integration is None:
        # A connector's message (the integration was removed after it was written): hand it
        # back to the outbound feed untouched.
        _release(message, attempts=message.attempts - 1)
        return "skipped"
    if not integration.is_active or integration.provider not in DELIVERING_PROVIDERS:
        _finish(message, status=Status.FAILED, error="The channel integration is not active.")
        return "failed"
    if integration.needs_reauth:
        _finish(
            message,
            status=Status.FAILED,
            error="The channel refused the integration's access token; store a new one.",
        )
        return "failed"

    result = _call_channel(message, integration)
    if result.sent:
        _finish(message, status=Status.SENT, provider_message_id=result.provider_message_id)
        return "sent"
    if result.unauthorized:
        with transaction.atomic():
            _finish(message, status=Status.FAILED, error=result.error)
            integration_mark_needs_reauth(integration=integration, error=result.error)
        return "failed"
    if result.retryable and message.attempts < settings.CHANNEL_DELIVERY_MAX_ATTEMPTS:
        delay = delivery_delay(attempt=message.attempts, retry_after=result.retry_after)
        if _retry_later(message, delay=delay, error=result.error):
            _enqueue(message.pk, countdown=delay)
            return "retry"
        return "skipped"
    _finish(message, status=Status.FAILED, error=result.error or "The channel refused the message.")
    return "failed"


def _call_channel(message: Message, integration: SocialIntegration) -> channels.SendResult:
    handle = message.conversation.customer_handle
    line = integration.provider == SocialIntegration.Provider.LINE
    with outside_call(integration.provider, "message.push" if line else "me/messages") as call:
        if line:
            result = channels.line_push(
                access_token=integration.access_token, to=handle, text=message.text, retry_key=str(message.pk)
            )
        else:
            result = channels.messenger_send(
                access_token=integration.access_token, recipient_id=handle, text=message.text
            )
        call.status_code, call.succeeded = result.status_code, result.sent
    channel_delivery_record(channel=integration.provider, outcome="sent" if result.sent else "failed")
    return result


def _claim_of(message: Message):
    """The rows of `message` still held by this attempt's claim."""
    return Message.objects.filter(pk=message.pk, attempts=message.attempts, delivering_since__isnull=False)


def _finish(message: Message, *, status: str, provider_message_id: str = "", error: str = "") -> bool:
    now = timezone.now()
    fields = {
        "delivery_status": status,
        "delivering_since": None,
        "next_attempt_at": None,
        "error": error[:1000],
        "updated_at": now,
    }
    if status == Status.SENT:
        fields.update(provider_message_id=provider_message_id[:255], sent_at=now)
    written = _claim_of(message).update(**fields)
    if not written:
        logger.warning(
            "delivery of message %s: the claim of attempt %s was lost", message.pk, message.attempts
        )
    elif status == Status.FAILED:
        conversation = message.conversation
        integration = conversation.integration
        failure_report(
            category="channel",
            operation=f"{conversation.channel}.send",
            step=f"attempt {message.attempts}",
            error_code="delivery_failed",
            message=error[:200] or "The message could not be delivered.",
            user_id=integration.shop.owner_id if integration is not None else None,
            context={"message_id": str(message.pk), "shop_id": str(conversation.shop_id)},
        )
    return bool(written)


def _retry_later(message: Message, *, delay: float, error: str) -> bool:
    now = timezone.now()
    return bool(
        _claim_of(message).update(
            delivering_since=None,
            next_attempt_at=now + timedelta(seconds=delay),
            error=error[:1000],
            updated_at=now,
        )
    )


def _release(message: Message, *, attempts: int) -> None:
    _claim_of(message).update(delivering_since=None, attempts=attempts, updated_at=timezone.now())


@transaction.atomic
def integration_mark_needs_reauth(*, integration: SocialIntegration, error: str = "") -> bool:
    """Mark the integration `needs_reauth` (the channel refused its token) and email its shop's
    owner, once: only the call that flips the flag sends the email (conditional UPDATE). Returns
    whether this call flipped it."""
    flipped = SocialIntegration.objects.filter(pk=integration.pk, needs_reauth=False).update(
        needs_reauth=True, updated_at=timezone.now()
    )
    if flipped:
        owner = integration.shop.owner
        logger.warning(
            "integration %s (%s) needs a new access token: %s", integration.pk, integration.provider, error
        )
        email_send_after_commit(
            template="channel_needs_reauth",
            to=[owner.email],
            context={
                "name": getattr(owner, "name", ""),
                "shop_name": integration.shop.name,
                "provider": integration.get_provider_display(),
                "account": integration.account_name or integration.account_id,
            },
        )
    return bool(flipped)


def message_delivery_reannounce(*, stale_after_seconds: int = 600) -> dict:
    """Queue again what a lost Celery message left behind (the broker was down, a worker died):

    - `pending` integration messages that are due and not claimed;
    - claims older than `stale_after_seconds` (the task died during the call). A LINE push is
      retried with the same retry key, which LINE accepts once, so it is released and queued
      again; a Messenger send has no such key and may have reached the customer, so it is marked
      `failed` rather than risk sending it twice.

    Returns {"queued", "released", "failed"}. Safe to run twice: the claim decides who sends.
    """
    now = timezone.now()
    stale = Message.objects.filter(
        delivery_status=Status.PENDING, delivering_since__lt=now - timedelta(seconds=stale_after_seconds)
    ).select_related("conversation__integration")
    released = failed = 0
    for message in stale:
        integration = message.conversation.integration
        if integration is not None and integration.provider == SocialIntegration.Provider.LINE:
            released += _claim_of(message).update(delivering_since=None, updated_at=now)
        else:
            failed += _claim_of(message).update(
                delivery_status=Status.FAILED,
                delivering_since=None,
                error="The delivery was interrupted and its outcome is unknown; not sent again.",
                updated_at=now,
            )
    due = list(
        Message.objects.filter(
            delivery_status=Status.PENDING,
            delivering_since__isnull=True,
            conversation__integration__isnull=False,
            created_at__lt=now - timedelta(seconds=60),
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .values_list("pk", flat=True)[:1000]
    )
    for message_id in due:
        _enqueue(message_id)
    return {"queued": len(due), "released": released, "failed": failed}


@transaction.atomic
def message_acknowledge(
    *, shop_id, message_id, status: str = Status.SENT, provider_message_id: str = "", error: str = ""
) -> Message:
    """A connector reports the delivery of one of the shop's outbound messages (from the outbound
    feed): `sent` (with the channel's id) or `failed` (with the error).

    Locks the message row. Raises NotFound for a message that is not one of this shop's
    connector messages (another shop's, inbound, or delivered through an integration); Conflict
    (`already_acknowledged`) when it was already acknowledged with another status. Acknowledging
    again with the same status answers the message as it is (a connector may retry).
    """
    message = (
        Message.objects.select_for_update(of=("self",))
        .select_related("conversation")
        .filter(
            pk=message_id,
            conversation__shop_id=shop_id,
            conversation__integration__isnull=True,
            direction=Message.Direction.OUTBOUND,
        )
        .first()
    )
    if message is None:
        raise NotFound("Not found.")
    if status not in (Status.SENT, Status.FAILED):
        raise ApplicationError(
            "Invalid input.", code="validation_error", fields={"status": ["Must be sent or failed."]}
        )
    if message.delivery_status != Status.PENDING:
        if message.delivery_status == status:
            return message
        raise Conflict(f"The message is already {message.delivery_status}.", code="already_acknowledged")
    now = timezone.now()
    message.delivery_status = status
    message.attempts = F("attempts") + 1
    message.updated_at = now
    if status == Status.SENT:
        message.provider_message_id = provider_message_id[:255]
        message.sent_at = now
        message.error = ""
    else:
        message.error = (error or "The connector could not deliver the message.")[:1000]
    message.save(
        update_fields=["delivery_status", "attempts", "provider_message_id", "sent_at", "error", "updated_at"]
    )
    message.refresh_from_db()
    return message
