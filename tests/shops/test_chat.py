"""Inbound messages, keyword auto-replies, staff/saved/AI replies."""

import pytest

from shops import services
from shops.models import KeywordReply, Message, Role
from tests.conftest import assert_error, client_for
from tests.shops.factories import make_member

pytestmark = pytest.mark.django_db


def rule(shop, keywords, reply, match="contains", priority=0, is_active=True):
    return KeywordReply.objects.create(
        shop=shop, keywords=keywords, reply=reply, match=match, priority=priority, is_active=is_active
    )


def test_contains_matches_case_insensitively_anywhere_in_the_message(shop):
    rule(shop, ["Price"], "It is 100 THB")
    assert (
        services.keyword_reply_match(shop_id=shop.pk, text="what's the PRICE please?").reply
        == "It is 100 THB"
    )
    assert services.keyword_reply_match(shop_id=shop.pk, text="how much?") is None


def test_exact_matches_only_the_whole_message_ignoring_case_and_spacing(shop):
    rule(shop, ["hello"], "Hi there!", match="exact")
    assert services.keyword_reply_match(shop_id=shop.pk, text="  HeLLo ").reply == "Hi there!"
    assert services.keyword_reply_match(shop_id=shop.pk, text="hello, is anyone there") is None


def test_highest_priority_rule_wins(shop):
    rule(shop, ["price"], "low", priority=1)
    rule(shop, ["price"], "high", priority=10)
    rule(shop, ["price"], "middle", priority=5)
    assert services.keyword_reply_match(shop_id=shop.pk, text="price?").reply == "high"


def test_equal_priority_goes_to_the_oldest_rule(shop):
    rule(shop, ["price"], "first")
    rule(shop, ["price"], "second")
    assert services.keyword_reply_match(shop_id=shop.pk, text="price").reply == "first"


def test_inactive_rules_are_ignored_even_with_higher_priority(shop):
    rule(shop, ["price"], "inactive", priority=100, is_active=False)
    rule(shop, ["price"], "active", priority=1)
    assert services.keyword_reply_match(shop_id=shop.pk, text="price").reply == "active"


def test_any_keyword_of_a_rule_matches_and_rules_of_other_shops_never_do(shop, other_shop):
    rule(shop, ["delivery", "shipping"], "2 days")
    rule(other_shop, ["refund"], "other shop")
    assert services.keyword_reply_match(shop_id=shop.pk, text="Shipping to Chiang Mai?").reply == "2 days"
    assert services.keyword_reply_match(shop_id=shop.pk, text="refund") is None


def test_thai_text_matches(shop):
    rule(shop, ["ราคา"], "100 บาท")
    assert services.keyword_reply_match(shop_id=shop.pk, text="สินค้านี้ราคาเท่าไหร่").reply == "100 บาท"


def test_inbound_stores_the_message_and_the_auto_reply_as_a_bot_message(auth_client, shop):
    rule(shop, ["price"], "100 THB")
    response = auth_client.post(
        f"/api/shops/{shop.pk}/conversations/inbound",
        {"channel": "facebook", "customer_handle": "psid-1", "text": "Price?"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["message"]["sender"] == "customer" and body["message"]["direction"] == "inbound"
    assert body["auto_reply"]["sender"] == "bot" and body["auto_reply"]["text"] == "100 THB"
    conversation = shop.conversations.get()
    assert list(conversation.messages.values_list("sender", flat=True)) == ["customer", "bot"]
    assert conversation.last_message_at is not None


def test_inbound_without_a_matching_rule_has_no_auto_reply(auth_client, shop):
    response = auth_client.post(
        f"/api/shops/{shop.pk}/conversations/inbound",
        {"channel": "line", "customer_handle": "U1", "text": "hello"},
        format="json",
    )
    assert response.status_code == 201 and response.json()["auto_reply"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"channel": "pigeon", "customer_handle": "x", "text": "hi"},
        {"channel": "line", "customer_handle": "", "text": "hi"},
        {"channel": "line", "customer_handle": "x", "text": ""},
        {"channel": "line", "customer_handle": "x", "text": "a" * 5001},
        {"channel": "line", "customer_handle": {"a": 1}, "text": "hi"},
    ],
)
def test_inbound_rejects_bad_input(auth_client, shop, body):
    assert_error(auth_client.post(f"/api/shops/{shop.pk}/conversations/inbound", body, format="json"), 400)
    assert not Message.objects.exists()


def test_staff_reply_saved_reply_and_ai_message(shop):
    staff = make_member(shop, Role.STAFF)
    client = client_for(staff.user)
    services.conversation_receive_message(shop=shop, channel="line", customer_handle="U1", text="hi")
    conversation = shop.conversations.get()
    saved = shop.saved_replies.create(title="Thanks", text="Thank you for your order!")
    path = f"/api/shops/{shop.pk}/conversations/{conversation.pk}/messages"

    typed = client.post(path, {"text": "On its way"}, format="json")
    assert typed.status_code == 201 and typed.json()["sender"] == "staff"
    assert typed.json()["sent_by_id"] == str(staff.user.pk) and typed.json()["is_ai"] is False
    canned = client.post(path, {"saved_reply_id": str(saved.pk)}, format="json")
    assert canned.status_code == 201 and canned.json()["text"] == "Thank you for your order!"
    ai = client.post(path, {"text": "Generated answer", "sender": "ai"}, format="json")
    assert ai.status_code == 201 and ai.json()["is_ai"] is True
    assert Message.objects.filter(is_ai=True).count() == 1


def test_message_send_rejects_bad_input(auth_client, shop, other_shop):
    services.conversation_receive_message(shop=shop, channel="line", customer_handle="U1", text="hi")
    conversation = shop.conversations.get()
    foreign_saved = other_shop.saved_replies.create(title="x", text="secret")
    path = f"/api/shops/{shop.pk}/conversations/{conversation.pk}/messages"
    for body in (
        {},
        {"text": "   "},
        {"text": "x", "sender": "bot"},
        {"text": "x", "sender": "customer"},
        {"saved_reply_id": str(foreign_saved.pk)},
        {"saved_reply_id": "nope"},
    ):
        assert_error(auth_client.post(path, body, format="json"), 400)
    assert conversation.messages.count() == 1


def test_conversation_and_message_lists_query_counts(auth_client, shop, django_assert_max_num_queries):
    for n in range(8):
        services.conversation_receive_message(shop=shop, channel="line", customer_handle=f"U{n}", text="hi")
    with django_assert_max_num_queries(4):
        response = auth_client.get(f"/api/shops/{shop.pk}/conversations?channel=line&status=open")
    assert response.json()["count"] == 8
    conversation = shop.conversations.first()
    for n in range(8):
        services.message_send(conversation=conversation, user=None, text=f"r{n}")
    with django_assert_max_num_queries(5):
        response = auth_client.get(f"/api/shops/{shop.pk}/conversations/{conversation.pk}/messages")
    assert response.json()["count"] == 9
    assert_error(auth_client.get(f"/api/shops/{shop.pk}/conversations?channel=pigeon"), 400)


def test_closing_and_reopening_a_conversation(auth_client, shop):
    services.conversation_receive_message(shop=shop, channel="line", customer_handle="U1", text="hi")
    conversation = shop.conversations.get()
    path = f"/api/shops/{shop.pk}/conversations/{conversation.pk}"
    assert auth_client.patch(path, {"status": "closed"}, format="json").json()["status"] == "closed"
    assert_error(auth_client.patch(path, {"status": "snoozed"}, format="json"), 400)
    services.conversation_receive_message(shop=shop, channel="line", customer_handle="U1", text="again")
    conversation.refresh_from_db()
    assert conversation.status == "open"
