"""Generic connectors read a shop's outbound messages by cursor and acknowledge them with the shop's
inbound key; another shop's key sees nothing."""

import uuid

import pytest

from shops import services
from shops.models import Conversation, KeywordReply, Message
from shops.services.inbound_keys import inbound_key_create
from tests.conftest import assert_error
from tests.shops.factories import make_shop

pytestmark = pytest.mark.django_db


def key_for(shop) -> dict:
    _, key = inbound_key_create(shop=shop, name="connector")
    return {"HTTP_AUTHORIZATION": f"Api-Key {key}"}


def feed(shop) -> str:
    return f"/api/shops/{shop.pk}/outbound"


def ack(shop, message) -> str:
    return f"/api/shops/{shop.pk}/outbound/{getattr(message, 'pk', message)}/ack"


@pytest.fixture
def web_conversation(shop):
    return Conversation.objects.create(
        shop=shop, channel="web", customer_handle="visitor-7", customer_name="Ann"
    )


def test_a_connector_reads_its_shops_pending_messages_oldest_first_by_cursor(
    api_client, shop, user, web_conversation, line_integration
):
    sent = [
        services.message_send(conversation=web_conversation, user=user, text=f"reply {n}") for n in range(3)
    ]
    line = Conversation.objects.create(
        shop=shop, channel="line", customer_handle="U1", integration=line_integration
    )
    services.message_send(conversation=line, user=user, text="goes through LINE, not the connector")
    auth = key_for(shop)

    first = api_client.get(feed(shop), {"cursor": "", "page_size": 2}, **auth)
    second = api_client.get(first.json()["next"], **auth)

    assert first.status_code == 200, first.content
    rows = first.json()["results"] + second.json()["results"]
    assert [r["id"] for r in rows] == [str(m.pk) for m in sent]
    assert second.json()["next"] is None
    assert rows[0] == {
        **rows[0],
        "conversation_id": str(web_conversation.pk),
        "channel": "web",
        "customer_handle": "visitor-7",
        "customer_name": "Ann",
        "sender": "staff",
        "text": "reply 0",
        "delivery_status": "pending",
    }


def test_keyword_auto_replies_reach_the_connector_feed(api_client, shop):
    KeywordReply.objects.create(shop=shop, keywords=["hours"], reply="9 to 6", match="contains")
    auth = key_for(shop)
    body = {"channel": "whatsapp", "customer_handle": "+66812345678", "text": "opening hours?"}

    api_client.post(f"/api/shops/{shop.pk}/conversations/inbound", body, format="json", **auth)
    response = api_client.get(feed(shop), **auth)

    (row,) = response.json()["results"]
    assert (row["sender"], row["text"], row["channel"]) == ("bot", "9 to 6", "whatsapp")


def test_an_acknowledged_message_leaves_the_feed_and_records_the_channels_id(
    api_client, shop, user, web_conversation
):
    message = services.message_send(conversation=web_conversation, user=user, text="hi")
    auth = key_for(shop)

    response = api_client.post(
        ack(shop, message), {"provider_message_id": "wamid.HBgL"}, format="json", **auth
    )
    again = api_client.post(ack(shop, message), {}, format="json", **auth)

    assert response.status_code == 200, response.content
    assert (response.json()["delivery_status"], response.json()["provider_message_id"]) == (
        "sent",
        "wamid.HBgL",
    )
    assert again.status_code == 200
    message.refresh_from_db()
    assert (message.delivery_status, message.attempts, message.provider_message_id) == (
        "sent",
        1,
        "wamid.HBgL",
    )
    assert api_client.get(feed(shop), **auth).json()["results"] == []


def test_a_failed_acknowledgement_keeps_the_error_and_cannot_be_changed_to_sent(
    api_client, shop, user, web_conversation
):
    message = services.message_send(conversation=web_conversation, user=user, text="hi")
    auth = key_for(shop)

    failed = api_client.post(
        ack(shop, message), {"status": "failed", "error": "user blocked us"}, format="json", **auth
    )
    changed = api_client.post(ack(shop, message), {"status": "sent"}, format="json", **auth)

    assert failed.json()["error"] == "user blocked us"
    assert_error(changed, 409, "already_acknowledged")
    assert Message.objects.get(pk=message.pk).delivery_status == "failed"


def test_another_shops_key_sees_nothing_and_acknowledges_nothing(api_client, shop, user, web_conversation):
    message = services.message_send(conversation=web_conversation, user=user, text="private")
    other_auth = key_for(make_shop())

    assert_error(api_client.get(feed(shop), **other_auth), 404)
    assert_error(api_client.post(ack(shop, message), {}, format="json", **other_auth), 404)
    assert Message.objects.get(pk=message.pk).delivery_status == "pending"


def test_a_key_cannot_acknowledge_another_shops_message_through_its_own_shop(
    api_client, shop, user, web_conversation
):
    message = services.message_send(conversation=web_conversation, user=user, text="private")
    other = make_shop()

    response = api_client.post(ack(other, message), {}, format="json", **key_for(other))

    assert_error(response, 404)
    assert Message.objects.get(pk=message.pk).delivery_status == "pending"


def test_messages_delivered_by_an_integration_or_inbound_or_unknown_are_404_to_ack(
    api_client, shop, user, line_integration
):
    line = Conversation.objects.create(
        shop=shop, channel="line", customer_handle="U1", integration=line_integration
    )
    by_line = services.message_send(conversation=line, user=user, text="LINE's")
    inbound, _ = services.conversation_receive_message(
        shop=shop, channel="web", customer_handle="v", text="hi"
    )
    auth = key_for(shop)

    for target in (by_line, inbound, uuid.uuid4()):
        assert_error(api_client.post(ack(shop, target), {}, format="json", **auth), 404)
    assert Message.objects.get(pk=by_line.pk).delivery_status == "pending"


def test_bad_acknowledgements_are_400_and_change_nothing(api_client, shop, user, web_conversation):
    message = services.message_send(conversation=web_conversation, user=user, text="hi")
    auth = key_for(shop)

    for body in ({"status": "delivered"}, {"provider_message_id": 5}, {"error": "x" * 1001}, ["sent"]):
        assert_error(api_client.post(ack(shop, message), body, format="json", **auth), 400)
    assert_error(api_client.post(ack(shop, message), b"{", content_type="application/json", **auth), 400)
    assert_error(api_client.get(feed(shop), {"cursor": "garbage"}, **auth), 400)
    assert Message.objects.get(pk=message.pk).delivery_status == "pending"


def test_the_feed_needs_the_shops_inbound_key(api_client, auth_client, shop):
    assert_error(api_client.get(feed(shop)), 401)
    assert auth_client.get(feed(shop)).status_code in (401, 403)  # a member's JWT is not a connector


def test_the_feed_costs_the_same_queries_for_many_messages(
    api_client, shop, user, web_conversation, django_assert_max_num_queries
):
    for n in range(30):
        services.message_send(conversation=web_conversation, user=user, text=f"m{n}")
    auth = key_for(shop)

    with django_assert_max_num_queries(5):
        response = api_client.get(feed(shop), {"cursor": "", "page_size": 25}, **auth)

    assert len(response.json()["results"]) == 25
