"""Outbound delivery of staff, bot and ai messages through LINE (line-bot-sdk) and Messenger (Graph
API over httpx), against a local server that checks the channels' wire format
(tests/shops/channel_server.py). The SDK and httpx code paths run for real."""

import random
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from shops import services
from shops.models import Conversation, Message, SavedReply, SocialIntegration
from tests.conftest import client_for
from tests.shops.channel_server import LINE_PUSH, MESSENGER_SEND

pytestmark = pytest.mark.django_db

LINE_USER = "U4af4980629e1c4ee5bf1d4d3b62c1c1f"
PSID = "6123456789012345"


def conversation_for(integration, handle) -> Conversation:
    return Conversation.objects.create(
        shop=integration.shop, channel=integration.provider, customer_handle=handle, integration=integration
    )


@pytest.fixture
def line_conversation(line_integration):
    return conversation_for(line_integration, LINE_USER)


@pytest.fixture
def messenger_conversation(facebook_integration):
    return conversation_for(facebook_integration, PSID)


def staff_message(conversation, user, text="Thank you! It ships today.") -> Message:
    return services.message_send(conversation=conversation, user=user, text=text)


def test_a_staff_message_goes_to_line_as_a_push_with_the_channel_token(
    channel_server, line_conversation, user
):
    message = staff_message(line_conversation, user)

    outcome = services.message_deliver(message_id=message.pk)

    assert outcome == "sent"
    (request,) = channel_server.seen(LINE_PUSH)
    assert request.method == "POST"
    assert request.headers["authorization"] == "Bearer line-channel-access-token"
    assert request.headers["x-line-retry-key"] == str(message.pk)
    assert request.body == {
        "to": LINE_USER,
        "messages": [{"type": "text", "text": "Thank you! It ships today."}],
        "notificationDisabled": False,
    }
    message.refresh_from_db()
    assert (message.delivery_status, message.attempts, message.error) == ("sent", 1, "")
    assert message.provider_message_id.isdigit()
    assert message.sent_at is not None and message.delivering_since is None


def test_a_staff_message_goes_to_messenger_through_the_send_api(channel_server, messenger_conversation, user):
    message = staff_message(messenger_conversation, user, text="สวัสดีค่ะ")

    assert services.message_deliver(message_id=message.pk) == "sent"

    (request,) = channel_server.seen(MESSENGER_SEND)
    assert request.query == {"access_token": "page-access-token"}
    assert request.headers["content-type"].startswith("application/json")
    assert request.body == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "สวัสดีค่ะ"},
    }
    message.refresh_from_db()
    assert message.delivery_status == "sent"
    assert message.provider_message_id.startswith("m_")


def test_a_429_with_retry_after_waits_at_least_that_long_then_sends(
    channel_server, line_conversation, user, settings
):
    settings.CHANNEL_DELIVERY_BACKOFF_SECONDS = 1
    channel_server.script(LINE_PUSH, (429, {"Retry-After": "120"}, {"message": "Too many requests"}))
    message = staff_message(line_conversation, user)
    start = timezone.now()

    with time_machine.travel(start, tick=False):
        assert services.message_deliver(message_id=message.pk) == "retry"
        message.refresh_from_db()
        assert (message.delivery_status, message.attempts) == ("pending", 1)
        assert message.next_attempt_at >= start + timedelta(seconds=120)
        assert "429" in message.error
        # a task that comes early (a redelivery) does not call the channel
        assert services.message_deliver(message_id=message.pk) == "skipped"
    with time_machine.travel(message.next_attempt_at, tick=False):
        assert services.message_deliver(message_id=message.pk) == "sent"

    assert len(channel_server.seen(LINE_PUSH)) == 2
    message.refresh_from_db()
    assert (message.delivery_status, message.attempts, message.error) == ("sent", 2, "")


def test_5xx_is_retried_until_the_attempts_run_out_then_failed(
    channel_server, messenger_conversation, user, settings
):
    settings.CHANNEL_DELIVERY_MAX_ATTEMPTS = 3
    for _ in range(3):
        channel_server.script(
            MESSENGER_SEND, (503, {}, {"error": {"message": "Service unavailable", "code": 2}})
        )
    message = staff_message(messenger_conversation, user)

    outcomes = []
    for _ in range(3):
        outcomes.append(services.message_deliver(message_id=message.pk))
        Message.objects.filter(pk=message.pk).update(next_attempt_at=None)  # due now

    assert outcomes == ["retry", "retry", "failed"]
    message.refresh_from_db()
    assert (message.delivery_status, message.attempts) == ("failed", 3)
    assert "503" in message.error
    assert services.message_deliver(message_id=message.pk) == "skipped"
    assert len(channel_server.seen(MESSENGER_SEND)) == 3


def test_a_401_from_line_fails_the_message_marks_the_integration_and_emails_the_owner_once(
    channel_server, line_conversation, line_integration, user, django_capture_on_commit_callbacks
):
    SocialIntegration.objects.filter(pk=line_integration.pk).update(access_token="revoked")
    first, second = staff_message(line_conversation, user), staff_message(line_conversation, user, "again")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.message_deliver(message_id=first.pk) == "failed"

    first.refresh_from_db()
    line_integration.refresh_from_db()
    assert first.delivery_status == "failed" and "401" in first.error
    assert line_integration.needs_reauth is True
    assert len(callbacks) == 1  # the owner's email, queued after commit
    # the next message is not sent with a token the channel refused
    assert services.message_deliver(message_id=second.pk) == "failed"
    assert len(channel_server.seen(LINE_PUSH)) == 1


def test_the_needs_reauth_email_names_the_shop_and_channel(line_integration):
    from accounts.emails import email_render

    subject, text, _ = email_render(
        template="channel_needs_reauth",
        context={"name": "Nok", "shop_name": line_integration.shop.name, "provider": "LINE", "account": "OA"},
    )

    assert line_integration.shop.name in subject and "LINE" in subject
    assert "new access token" in text


def test_a_refused_page_token_on_messenger_marks_the_integration(
    channel_server, messenger_conversation, facebook_integration, user
):
    SocialIntegration.objects.filter(pk=facebook_integration.pk).update(access_token="expired")
    message = staff_message(messenger_conversation, user)

    assert services.message_deliver(message_id=message.pk) == "failed"

    facebook_integration.refresh_from_db()
    assert facebook_integration.needs_reauth is True


def test_a_scripted_401_on_messenger_also_marks_the_integration(
    channel_server, messenger_conversation, facebook_integration, user
):
    channel_server.script(
        MESSENGER_SEND,
        (401, {}, {"error": {"message": "Unauthorized", "type": "OAuthException", "code": 102}}),
    )
    message = staff_message(messenger_conversation, user)

    assert services.message_deliver(message_id=message.pk) == "failed"

    facebook_integration.refresh_from_db()
    assert facebook_integration.needs_reauth is True


def test_storing_a_new_access_token_clears_needs_reauth(auth_client, shop, line_integration):
    SocialIntegration.objects.filter(pk=line_integration.pk).update(needs_reauth=True)
    url = f"/api/shops/{shop.pk}/integrations/{line_integration.pk}"

    response = auth_client.patch(url, {"access_token": "fresh-token"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["needs_reauth"] is False


def test_another_refusal_fails_the_message_without_retry(channel_server, messenger_conversation, user):
    channel_server.script(
        MESSENGER_SEND,
        (
            400,
            {},
            {"error": {"message": "(#100) No matching user found", "type": "OAuthException", "code": 100}},
        ),
    )
    message = staff_message(messenger_conversation, user)

    assert services.message_deliver(message_id=message.pk) == "failed"

    message.refresh_from_db()
    assert (message.delivery_status, message.attempts) == ("failed", 1)
    assert "No matching user found" in message.error


def test_a_line_push_retried_with_an_accepted_retry_key_is_not_sent_twice(
    channel_server, line_conversation, user
):
    # given LINE accepted the push but its answer was lost (a 500 reached us instead)
    message = staff_message(line_conversation, user)
    channel_server.accepted_retry_keys[str(message.pk)] = "accepted-request-id"

    # when the message is tried again with the same retry key
    assert services.message_deliver(message_id=message.pk) == "sent"

    # then LINE answered 409 with the accepted request: the message is sent, once
    message.refresh_from_db()
    assert (message.delivery_status, message.provider_message_id) == ("sent", "accepted-request-id")


def test_a_sent_message_is_never_sent_again(channel_server, line_conversation, user):
    message = staff_message(line_conversation, user)
    services.message_deliver(message_id=message.pk)

    assert services.message_deliver(message_id=message.pk) == "skipped"
    assert len(channel_server.seen(LINE_PUSH)) == 1


def test_saved_replies_and_ai_messages_go_out_the_same_way(channel_server, line_conversation, user):
    saved = SavedReply.objects.create(shop=line_conversation.shop, title="Hours", text="Open 9-18")
    by_saved = services.message_send(conversation=line_conversation, user=user, saved_reply_id=saved.pk)
    by_ai = services.message_send(conversation=line_conversation, user=user, text="AI here", sender="ai")

    for message in (by_saved, by_ai):
        assert services.message_deliver(message_id=message.pk) == "sent"

    texts = [r.body["messages"][0]["text"] for r in channel_server.seen(LINE_PUSH)]
    assert texts == ["Open 9-18", "AI here"]


def test_a_message_is_queued_for_delivery_only_after_commit_and_only_for_integrations(
    line_conversation, shop, user, django_capture_on_commit_callbacks
):
    connector_conversation = Conversation.objects.create(
        shop=shop, channel="web", customer_handle="visitor-1"
    )

    with django_capture_on_commit_callbacks() as via_line:
        staff_message(line_conversation, user)
    with django_capture_on_commit_callbacks() as via_connector:
        staff_message(connector_conversation, user)

    assert (len(via_line), len(via_connector)) == (1, 0)


def test_the_message_api_shows_the_delivery_fields(auth_client, shop, line_conversation, user):
    message = staff_message(line_conversation, user)
    Message.objects.filter(pk=message.pk).update(
        delivery_status="failed",
        attempts=2,
        error="LINE API 400: The property, 'to', in the request body is invalid",
    )

    response = auth_client.get(f"/api/shops/{shop.pk}/conversations/{line_conversation.pk}/messages")

    (row,) = response.json()["results"]
    assert (row["delivery_status"], row["attempts"], row["provider_message_id"]) == ("failed", 2, "")
    assert row["error"].startswith("LINE API 400")


def test_an_integration_turned_off_fails_its_pending_messages_without_a_call(
    channel_server, line_conversation, line_integration, user
):
    message = staff_message(line_conversation, user)
    SocialIntegration.objects.filter(pk=line_integration.pk).update(is_active=False)

    assert services.message_deliver(message_id=message.pk) == "failed"
    assert channel_server.requests == []


def test_delivery_delay_backs_off_exponentially_with_jitter_and_honours_retry_after(settings):
    settings.CHANNEL_DELIVERY_BACKOFF_SECONDS = 10
    settings.CHANNEL_DELIVERY_BACKOFF_MAX_SECONDS = 300
    rng = random.Random(7)
    from shops.services.delivery import delivery_delay

    delays = [delivery_delay(attempt=n, retry_after=None, rng=rng) for n in (1, 2, 3, 10)]

    assert 5 <= delays[0] <= 10 and 10 <= delays[1] <= 20 and 20 <= delays[2] <= 40
    assert 150 <= delays[3] <= 300  # capped
    assert delivery_delay(attempt=1, retry_after=600, rng=rng) == 600


def test_retry_after_as_an_http_date_is_understood():
    from email.utils import format_datetime

    from shops.channels import retry_after_seconds

    with time_machine.travel("2026-12-04 10:00:00Z", tick=False):
        when = format_datetime(timezone.now() + timedelta(seconds=90), usegmt=True)
        assert retry_after_seconds(when) == 90
    assert retry_after_seconds("30") == 30
    assert retry_after_seconds("soon") is None


def test_a_message_of_another_shop_is_404_on_the_messages_api(other_client, shop, line_conversation, user):
    # the conversations API is the only way to see delivery fields; another shop's user sees nothing
    response = client_for(user).get(f"/api/shops/{shop.pk}/conversations/{uuid.uuid4()}/messages")
    assert response.status_code == 404
    response = other_client.get(f"/api/shops/{shop.pk}/conversations/{line_conversation.pk}/messages")
    assert response.status_code == 404


def test_the_reannounce_settles_claims_of_dead_tasks_without_risking_a_second_messenger_send(
    line_conversation, messenger_conversation, user
):
    # given two messages whose tasks died during the call, 11 minutes ago
    via_line, via_messenger = (
        staff_message(line_conversation, user),
        staff_message(messenger_conversation, user),
    )
    long_ago = timezone.now() - timedelta(minutes=11)
    Message.objects.filter(pk__in=[via_line.pk, via_messenger.pk]).update(
        delivering_since=long_ago, attempts=1
    )
    # and one claimed a moment ago (its task is still calling)
    running = staff_message(line_conversation, user, "in flight")
    Message.objects.filter(pk=running.pk).update(delivering_since=timezone.now(), attempts=1)

    counts = services.message_delivery_reannounce()

    # then LINE's is released for a retry under the same retry key, Messenger's is failed
    assert (counts["released"], counts["failed"]) == (1, 1)
    via_line.refresh_from_db()
    via_messenger.refresh_from_db()
    running.refresh_from_db()
    assert (via_line.delivery_status, via_line.delivering_since) == ("pending", None)
    assert via_messenger.delivery_status == "failed" and "unknown" in via_messenger.error
    assert running.delivering_since is not None and running.delivery_status == "pending"


def test_the_message_admin_shows_the_delivery_fields(admin_client, line_conversation, user):
    message = staff_message(line_conversation, user)
    Message.objects.filter(pk=message.pk).update(delivery_status="failed", error="LINE API 400: bad to")

    page = admin_client.get(f"/admin/shops/message/{message.pk}/change/")
    listing = admin_client.get("/admin/shops/message/", {"delivery_status__exact": "failed"})

    assert page.status_code == 200 and b"LINE API 400: bad to" in page.content
    assert listing.status_code == 200 and str(message.pk).encode() in listing.content


def test_a_message_inserted_by_raw_sql_with_the_older_columns_is_valid(line_conversation):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO shops_message (id, created_at, updated_at, direction, sender, text, conversation_id)"
            " VALUES (gen_random_uuid(), now(), now(), 'inbound', 'customer', 'hi', %s)",
            [line_conversation.pk],
        )

    message = Message.objects.get()
    assert (message.attempts, message.provider_message_id, message.error, message.delivery_status) == (
        0,
        "",
        "",
        None,
    )


def test_each_channel_answer_is_counted_for_the_delivery_failure_alert(
    channel_server, messenger_conversation, line_conversation, user
):
    from prometheus_client import REGISTRY

    def count(channel, outcome):
        labels = {"channel": channel, "outcome": outcome}
        return REGISTRY.get_sample_value("saas_channel_deliveries_total", labels) or 0

    before = {(c, o): count(c, o) for c in ("line", "facebook") for o in ("sent", "failed")}
    channel_server.script(MESSENGER_SEND, (400, {}, {"error": {"message": "Invalid parameter", "code": 100}}))

    assert services.message_deliver(message_id=staff_message(line_conversation, user).pk) == "sent"
    assert services.message_deliver(message_id=staff_message(messenger_conversation, user).pk) == "failed"

    after = {key: count(*key) for key in before}
    assert {key: after[key] - before[key] for key in before} == {
        ("line", "sent"): 1,
        ("line", "failed"): 0,
        ("facebook", "sent"): 0,
        ("facebook", "failed"): 1,
    }


def test_each_channel_call_writes_one_usage_row(
    channel_server, messenger_conversation, line_conversation, user
):
    from jobs.models import ApiUsageLog

    channel_server.script(MESSENGER_SEND, (400, {}, {"error": {"message": "Invalid parameter", "code": 100}}))

    assert services.message_deliver(message_id=staff_message(line_conversation, user).pk) == "sent"
    assert services.message_deliver(message_id=staff_message(messenger_conversation, user).pk) == "failed"

    rows = sorted(
        ApiUsageLog.objects.filter(provider__in=["line", "facebook"]).values_list(
            "provider", "endpoint", "status_code", "succeeded"
        )
    )
    assert rows == [("facebook", "me/messages", 400, False), ("line", "message.push", 200, True)]


def test_a_message_that_finally_fails_is_in_the_error_log_once(
    channel_server, messenger_conversation, user, settings
):
    from analytics.models import ErrorLog

    settings.CHANNEL_DELIVERY_MAX_ATTEMPTS = 2
    for _ in range(2):
        channel_server.script(
            MESSENGER_SEND, (503, {}, {"error": {"message": "Service unavailable", "code": 2}})
        )
    message = staff_message(messenger_conversation, user)

    assert services.message_deliver(message_id=message.pk) == "retry"
    assert not ErrorLog.objects.filter(category="channel").exists()  # a retry is not a failure yet
    Message.objects.filter(pk=message.pk).update(next_attempt_at=None)
    assert services.message_deliver(message_id=message.pk) == "failed"

    (group,) = ErrorLog.objects.filter(category="channel")
    assert (group.operation, group.step, group.error_code, group.occurrences) == (
        "facebook.send",
        "attempt 2",
        "delivery_failed",
        1,
    )
    assert group.user_id == messenger_conversation.shop.owner_id
    assert "503" in group.message
