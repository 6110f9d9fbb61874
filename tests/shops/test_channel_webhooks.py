"""Inbound chat channels: LINE and Messenger webhooks in their own formats and signature schemes,
through the shared receiver and its log (every delivery logged once, each event applied once)."""

import base64
import hashlib
import hmac
import json
import uuid

import pytest
from django.db import connection

from credits.models import WebhookLog
from shops.models import Conversation, KeywordReply, Message, SocialIntegration
from tests.conftest import assert_error
from tests.shops.conftest import APP_SECRET, LINE_SECRET, PAGE_ID, VERIFY_TOKEN

pytestmark = pytest.mark.django_db

CUSTOMER = "U4af4980629e1c4ee5bf1d4d3b62c1c1f"
PSID = "6123456789012345"


# --- LINE ---------------------------------------------------------------------------------------


def line_event(text="hello", *, event_id=None, message_id=None, user=CUSTOMER, kind="text"):
    message = {"id": message_id or str(uuid.uuid4().int)[:18], "type": kind, "quoteToken": "q1"}
    if kind == "text":
        message["text"] = text
    else:
        message.update(packageId="446", stickerId="1988", stickerResourceType="STATIC")
    return {
        "type": "message",
        "mode": "active",
        "timestamp": 1692251666727,
        "source": {"type": "user", "userId": user},
        "webhookEventId": event_id or f"01H{uuid.uuid4().hex[:23].upper()}",
        "deliveryContext": {"isRedelivery": False},
        "replyToken": uuid.uuid4().hex,
        "message": message,
    }


def line_body(*events) -> bytes:
    return json.dumps({"destination": "Ubot0000", "events": list(events)}).encode()


def line_signature(body: bytes, secret: str = LINE_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def post_line(client, integration_id, body: bytes, signature: str | None = None):
    headers = {} if signature == "" else {"HTTP_X_LINE_SIGNATURE": signature or line_signature(body)}
    return client.post(
        f"/api/channels/line/{integration_id}", body, content_type="application/json", **headers
    )


def test_a_signed_line_message_becomes_the_customers_message_in_a_conversation_bound_to_it(
    api_client, shop, line_integration
):
    body = line_body(line_event("มีสีแดงไหม", message_id="468789577898262530"))

    response = post_line(api_client, line_integration.pk, body)

    assert response.status_code == 200, response.content
    assert response.json()["messages"] == 1
    message = Message.objects.get()
    assert (message.direction, message.sender, message.text) == ("inbound", "customer", "มีสีแดงไหม")
    assert message.provider_message_id == "468789577898262530"
    assert message.delivery_status is None
    conversation = message.conversation
    assert (conversation.shop_id, conversation.channel, conversation.customer_handle) == (
        shop.pk,
        "line",
        CUSTOMER,
    )
    assert conversation.integration_id == line_integration.pk
    log = WebhookLog.objects.get()
    assert (log.source, log.provider, log.outcome, log.status_code, log.signature_valid) == (
        "channels",
        "line",
        "processed",
        200,
        True,
    )
    assert log.event_id.startswith(f"{line_integration.pk}:")
    assert log.headers["x-line-signature"]


def test_a_redelivered_line_body_is_logged_again_and_stores_nothing_twice(api_client, line_integration):
    body = line_body(line_event("hi"))

    first = post_line(api_client, line_integration.pk, body)
    second = post_line(api_client, line_integration.pk, body)

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["status"] == "duplicate"
    assert Message.objects.count() == 1
    assert sorted(WebhookLog.objects.values_list("outcome", flat=True)) == ["duplicate", "processed"]


def test_an_event_redelivered_inside_another_batch_is_stored_once(api_client, line_integration):
    # given an event already applied alone
    event = line_event("first", message_id="1001")
    post_line(api_client, line_integration.pk, line_body(event))

    # when LINE sends it again together with a new one (another body, another delivery id)
    response = post_line(
        api_client, line_integration.pk, line_body(event, line_event("second", message_id="1002"))
    )

    # then only the new message is added
    assert response.status_code == 200
    assert response.json()["messages"] == 1
    assert sorted(Message.objects.values_list("text", flat=True)) == ["first", "second"]


def test_a_sticker_is_stored_as_its_type_and_follow_events_are_ignored(api_client, line_integration):
    follow = {**line_event(), "type": "follow", "follow": {"isUnblocked": False}}
    del follow["message"]

    response = post_line(api_client, line_integration.pk, line_body(line_event(kind="sticker"), follow))

    assert response.status_code == 200
    assert list(Message.objects.values_list("text", flat=True)) == ["[sticker]"]


def test_lines_verify_call_with_no_events_is_answered_200_and_logged(api_client, line_integration):
    response = post_line(api_client, line_integration.pk, line_body())

    assert response.status_code == 200
    assert not Message.objects.exists()
    assert WebhookLog.objects.get().outcome == "ignored"


@pytest.mark.parametrize(
    ("signature", "status", "code"),
    [
        ("", 400, "missing_signature"),
        ("bm90IHRoZSBzaWduYXR1cmU=", 401, "invalid_signature"),
        ("wrong-secret", 401, "invalid_signature"),
    ],
)
def test_a_badly_signed_line_delivery_is_refused_logged_and_stores_nothing(
    api_client, line_integration, signature, status, code
):
    body = line_body(line_event("hi"))
    if signature == "wrong-secret":
        signature = line_signature(body, secret="another-channel-secret")

    response = post_line(api_client, line_integration.pk, body, signature)

    assert_error(response, status, code)
    assert not Message.objects.exists() and not Conversation.objects.exists()
    log = WebhookLog.objects.get()
    assert (log.outcome, log.status_code, log.signature_valid) == ("invalid_signature", status, False)


def test_an_unknown_or_inactive_or_other_provider_integration_is_404_and_logged(
    api_client, line_integration, facebook_integration
):
    body = line_body(line_event("hi"))
    SocialIntegration.objects.filter(pk=line_integration.pk).update(is_active=False)

    for integration_id in (uuid.uuid4(), line_integration.pk, facebook_integration.pk):
        assert_error(post_line(api_client, integration_id, body), 404)

    assert not Message.objects.exists()
    assert WebhookLog.objects.filter(outcome="rejected", status_code=404).count() == 3


def test_a_signed_body_that_is_not_a_line_webhook_is_400_and_stores_nothing(api_client, line_integration):
    for body in (b"not json", b'{"events": "no"}', line_body({"type": "message"})):
        assert_error(post_line(api_client, line_integration.pk, body), 400)
    assert not Message.objects.exists()
    assert WebhookLog.objects.count() == 3


def test_a_line_keyword_reply_is_written_pending_for_delivery_through_line(
    api_client, shop, line_integration, django_capture_on_commit_callbacks
):
    KeywordReply.objects.create(shop=shop, keywords=["price"], reply="100 THB", match="contains")

    with django_capture_on_commit_callbacks() as callbacks:
        response = post_line(api_client, line_integration.pk, line_body(line_event("price?")))

    assert response.json()["auto_replies"] == 1
    reply = Message.objects.get(sender="bot")
    assert (reply.text, reply.delivery_status, reply.attempts) == ("100 THB", "pending", 0)
    assert reply.conversation.integration_id == line_integration.pk
    assert len(callbacks) == 1  # the delivery task, queued after commit


# --- Messenger ----------------------------------------------------------------------------------


def messenger_body(*messaging, page_id=PAGE_ID) -> bytes:
    return json.dumps(
        {"object": "page", "entry": [{"id": page_id, "time": 1458692752478, "messaging": list(messaging)}]}
    ).encode()


def messenger_message(text="hello", *, mid=None, sender=PSID, **extra):
    return {
        "sender": {"id": sender},
        "recipient": {"id": PAGE_ID},
        "timestamp": 1458692752478,
        "message": {"mid": mid or f"m_{uuid.uuid4().hex}", "text": text, **extra},
    }


def hub_signature(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_messenger(client, integration_id, body: bytes, signature: str | None = None):
    headers = {} if signature == "" else {"HTTP_X_HUB_SIGNATURE_256": signature or hub_signature(body)}
    return client.post(
        f"/api/channels/facebook/{integration_id}", body, content_type="application/json", **headers
    )


def test_the_messenger_handshake_echoes_the_challenge_for_the_right_verify_token(
    api_client, facebook_integration
):
    url = f"/api/channels/facebook/{facebook_integration.pk}"
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}

    response = api_client.get(url, params)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"1158201444"
    log = WebhookLog.objects.get()
    assert (log.source, log.provider, log.outcome, log.event_type) == (
        "channels",
        "facebook",
        "processed",
        "subscribe",
    )


def test_the_messenger_handshake_with_a_wrong_token_or_unknown_integration_is_refused_and_logged(
    api_client, facebook_integration
):
    params = {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "42"}

    wrong = api_client.get(f"/api/channels/facebook/{facebook_integration.pk}", params)
    unknown = api_client.get(
        f"/api/channels/facebook/{uuid.uuid4()}", {**params, "hub.verify_token": VERIFY_TOKEN}
    )

    assert_error(wrong, 403, "invalid_verify_token")
    assert_error(unknown, 404)
    assert b"42" not in wrong.content
    assert sorted(WebhookLog.objects.values_list("status_code", flat=True)) == [403, 404]


def test_a_signed_messenger_message_becomes_the_customers_message(api_client, shop, facebook_integration):
    body = messenger_body(messenger_message("Is it in stock?", mid="m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM"))

    response = post_messenger(api_client, facebook_integration.pk, body)

    assert response.status_code == 200, response.content
    message = Message.objects.get()
    assert (message.text, message.provider_message_id) == ("Is it in stock?", "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM")
    conversation = message.conversation
    assert (conversation.channel, conversation.customer_handle, conversation.integration_id) == (
        "facebook",
        PSID,
        facebook_integration.pk,
    )
    assert WebhookLog.objects.get().outcome == "processed"


def test_echoes_receipts_and_other_pages_entries_store_nothing(api_client, facebook_integration):
    echo = messenger_message("our own reply", is_echo=True)
    read = {"sender": {"id": PSID}, "recipient": {"id": PAGE_ID}, "timestamp": 1, "read": {"watermark": 1}}
    other_page = json.loads(messenger_body(messenger_message("not ours"), page_id="999"))
    body = json.loads(messenger_body(echo, read))
    body["entry"] += other_page["entry"]
    raw = json.dumps(body).encode()

    response = post_messenger(api_client, facebook_integration.pk, raw)

    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert not Message.objects.exists()


def test_a_redelivered_messenger_message_is_stored_once(api_client, facebook_integration):
    event = messenger_message("hi", mid="m_same")

    post_messenger(api_client, facebook_integration.pk, messenger_body(event))
    post_messenger(api_client, facebook_integration.pk, messenger_body(event, messenger_message("more")))

    assert sorted(Message.objects.values_list("text", flat=True)) == ["hi", "more"]


@pytest.mark.parametrize(
    ("signature", "status"),
    [("", 400), ("sha1=abc", 400), ("sha256=" + "0" * 64, 401), ("wrong-secret", 401)],
)
def test_a_badly_signed_messenger_delivery_is_refused_logged_and_stores_nothing(
    api_client, facebook_integration, signature, status
):
    body = messenger_body(messenger_message("hi"))
    if signature == "wrong-secret":
        signature = hub_signature(body, secret="another-app-secret")

    response = post_messenger(api_client, facebook_integration.pk, body, signature)

    assert_error(response, status)
    assert not Message.objects.exists()
    assert WebhookLog.objects.get().signature_valid is False


def test_a_signed_body_that_is_not_a_page_event_is_400(api_client, facebook_integration):
    for body in (b"[]", b'{"object": "instagram", "entry": []}', b'{"object": "page", "entry": 3}'):
        assert_error(post_messenger(api_client, facebook_integration.pk, body), 400)
    assert not Message.objects.exists()


# --- integrations keep the webhook secrets encrypted and write-only ----------------------------


def test_webhook_secrets_are_write_only_and_encrypted_at_rest(auth_client, shop):
    payload = {
        "provider": "facebook",
        "account_id": PAGE_ID,
        "access_token": "EAAG-page-token",
        "app_secret": "s3cret-app",
        "verify_token": "v3rify",
    }

    response = auth_client.post(f"/api/shops/{shop.pk}/integrations", payload, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    for secret in ("access_token", "app_secret", "verify_token", "channel_secret"):
        assert secret not in body
    assert (body["has_app_secret"], body["has_verify_token"], body["has_channel_secret"]) == (
        True,
        True,
        False,
    )
    assert body["webhook_url"] == f"http://testserver/api/channels/facebook/{body['id']}"
    assert body["needs_reauth"] is False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT app_secret, verify_token FROM shops_socialintegration WHERE id = %s", [body["id"]]
        )
        stored = cursor.fetchone()
    assert "s3cret-app" not in stored[0] and "v3rify" not in stored[1]
    assert SocialIntegration.objects.get(pk=body["id"]).app_secret == "s3cret-app"
