"""Customer chat: inbound messages, keyword auto-replies, staff and AI replies."""

from django.db import transaction
from django.utils import timezone

from config.exceptions import ApplicationError
from shops.models import Conversation, KeywordReply, Message, SavedReply, Shop


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


@transaction.atomic
def conversation_receive_message(
    *, shop: Shop, channel: str, customer_handle: str, text: str, customer_name: str = ""
) -> tuple[Message, Message | None]:
    """Store a customer's message (opening or reopening its conversation) and, when a keyword rule
    matches, the rule's reply as a `bot` message. Returns (inbound, auto_reply or None).

    The conversation is found by (shop, channel, customer_handle), which is unique in the database,
    so concurrent first messages from one customer share one conversation.
    """
    conversation, _ = Conversation.objects.get_or_create(
        shop=shop, channel=channel, customer_handle=customer_handle, defaults={"customer_name": customer_name}
    )
    inbound = Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.INBOUND,
        sender=Message.Sender.CUSTOMER,
        text=text,
    )
    reply = None
    rule = keyword_reply_match(shop_id=shop.pk, text=text)
    if rule is not None:
        reply = Message.objects.create(
            conversation=conversation,
            direction=Message.Direction.OUTBOUND,
            sender=Message.Sender.BOT,
            text=rule.reply,
            keyword_reply=rule,
        )
    updates = {
        "last_message_at": timezone.now(),
        "status": Conversation.Status.OPEN,
        "updated_at": timezone.now(),
    }
    if customer_name and not conversation.customer_name:
        updates["customer_name"] = customer_name
    Conversation.objects.filter(pk=conversation.pk).update(**updates)
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
    counted in platform metrics). With `saved_reply_id` the saved reply's text is used.

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
    message = Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        sender=sender,
        text=text,
        sent_by=user,
    )
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_at=message.created_at, updated_at=timezone.now()
    )
    return message
