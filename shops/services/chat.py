"""Customer chat: inbound messages, keyword auto-replies, staff and AI replies.

Every outbound message (staff, bot, ai) is written by `_outbound_create`, which checks the shop's
outbound allowance and schedules its delivery (shops.services.delivery) after commit.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.exceptions import ApplicationError
from shops.models import Conversation, KeywordReply, Message, SavedReply, Shop, SocialIntegration
from shops.services.delivery import message_delivery_schedule
from shops.services.plans import PLAN_LIMIT_ERROR, shop_plan_limit_check


def _normalize(text: str) -> str:
    return " ".join(text.split()).casefold()


def keyword_reply_match(*, shop_id, text: str) -> KeywordReply | None:
    """The active rule that answers `text`, or None.

    Case-insensitive (casefold) and whitespace-insensitive. `exact`: the whole message equals a
    keyword; `contains`: a keyword occurs in the message. The highest priority wins; equal
    priorities go to the oldest rule, so the answer is deterministic. Inactive rules never match.
    """
    message = _normalize(text)
    if not message:
        return None
    rules = KeywordReply.objects.filter(shop_id=shop_id, is_active=True).order_by(
        "-priority", "created_at", "id"
    )
    for rule in rules:
        for keyword in rule.keywords:
            keyword = _normalize(keyword)
            if not keyword:
                continue
            if rule.match == KeywordReply.Match.EXACT and message == keyword:
                return rule
            if rule.match == KeywordReply.Match.CONTAINS and keyword in message:
                return rule
    return None


def outbound_limit_check(*, shop_id) -> None:
    """The one place where the shop's plan limit on outbound messages per calendar month (UTC)
    is enforced, before any staff, bot or ai message is written: PlanLimit (403 `plan_limit`)
    when the month's allowance is used up. Locks the shop row until the caller's transaction
    ends, so concurrent replies never pass the limit (unlimited plans take no lock)."""
    shop_plan_limit_check(shop_id=shop_id, limit="max_outbound_messages_per_month")


def _outbound_create(*, conversation: Conversation, sender: str, text: str, **fields) -> Message:
    outbound_limit_check(shop_id=conversation.shop_id)
    message = Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        sender=sender,
        text=text,
        delivery_status=Message.DeliveryStatus.PENDING,
        **fields,
    )
    message.conversation = conversation
    message_delivery_schedule(message=message)
    return message


@transaction.atomic
def conversation_receive_message(
    *,
    shop: Shop,
    channel: str,
    customer_handle: str,
    text: str,
    customer_name: str = "",
    integration: SocialIntegration | None = None,
    provider_message_id: str = "",
) -> tuple[Message | None, Message | None]:
    """Store a customer's message (opening or reopening its conversation) and, when a keyword rule
    matches, the rule's reply as a `bot` message, delivered like any outbound message. Returns
    (inbound, auto_reply or None); (None, None) when `provider_message_id` was already stored in
    this conversation (a channel redelivering an event: nothing is stored or sent again).

    The conversation is found by (shop, channel, customer_handle), which is unique in the database,
    so concurrent first messages from one customer share one conversation. A message that came
    through an `integration` (a channel webhook) binds the conversation to it, so the replies go
    out through it. An automatic reply over the plan's monthly outbound limit is recorded (a `bot`
    message with delivery_status `failed` and the error PLAN_LIMIT_ERROR, so staff see what the
    customer was not told) but never delivered, and does not count towards the month's usage.
    """
    conversation, _ = Conversation.objects.get_or_create(
        shop=shop,
        channel=channel,
        customer_handle=customer_handle,
        defaults={"customer_name": customer_name, "integration": integration},
    )
    try:
        with transaction.atomic():
            inbound = Message.objects.create(
                conversation=conversation,
                direction=Message.Direction.INBOUND,
                sender=Message.Sender.CUSTOMER,
                text=text,
                provider_message_id=provider_message_id[:255],
            )
    except IntegrityError:
        if not provider_message_id:
            raise
        return None, None  # the unique (conversation, provider id) of inbound messages
    updates = {
        "last_message_at": timezone.now(),
        "status": Conversation.Status.OPEN,
        "updated_at": timezone.now(),
    }
    if integration is not None and conversation.integration_id != integration.pk:
        updates["integration"] = integration
        conversation.integration = integration
    if customer_name and not conversation.customer_name:
        updates["customer_name"] = customer_name
    Conversation.objects.filter(pk=conversation.pk).update(**updates)
    reply = None
    rule = keyword_reply_match(shop_id=shop.pk, text=text)
    if rule is not None:
        try:
            with transaction.atomic():
                reply = _outbound_create(
                    conversation=conversation, sender=Message.Sender.BOT, text=rule.reply, keyword_reply=rule
                )
        except ApplicationError as exc:
            if exc.code != "plan_limit":
                raise
            reply = Message.objects.create(
                conversation=conversation,
                direction=Message.Direction.OUTBOUND,
                sender=Message.Sender.BOT,
                text=rule.reply,
                keyword_reply=rule,
                delivery_status=Message.DeliveryStatus.FAILED,
                error=PLAN_LIMIT_ERROR,
            )
    return inbound, reply


@transaction.atomic
def message_send(
    *,
    conversation: Conversation,
    user,
    text: str = "",
    saved_reply_id=None,
    sender: str = Message.Sender.STAFF,
) -> Message:
    """Record an outgoing message from staff (or an AI assistant acting for them: sender `ai`,
    counted in platform metrics) and deliver it after commit (shops.services.delivery). With
    `saved_reply_id` the saved reply's text is used.

    Raises ApplicationError(validation_error) for an empty message, a saved reply of another shop,
    or a sender other than staff/ai.
    """
    if sender not in (Message.Sender.STAFF, Message.Sender.AI):
        raise ApplicationError(
            "Invalid input.", code="validation_error", fields={"sender": ["Must be staff or ai."]}
        )
    if saved_reply_id is not None:
        saved = SavedReply.objects.filter(pk=saved_reply_id, shop_id=conversation.shop_id).first()
        if saved is None:
            raise ApplicationError(
                "Invalid input.", code="validation_error", fields={"saved_reply_id": ["Unknown saved reply."]}
            )
        text = saved.text
    if not text or not text.strip():
        raise ApplicationError(
            "Invalid input.",
            code="validation_error",
            fields={"text": ["A message needs text or a saved reply."]},
        )
    message = _outbound_create(conversation=conversation, sender=sender, text=text, sent_by=user)
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_at=message.created_at, updated_at=timezone.now()
    )
    return message
