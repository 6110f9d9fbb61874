"""Delivery by a real Celery worker: queued after commit, retried after a 429, and sent at most once
when the task is delivered twice (two tasks racing for one message on a two-thread worker)."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import transaction

from config.celery import app as celery_app
from shops import services
from shops.models import Conversation, Message
from shops.tasks import deliver_message
from tests.conftest import finished_tasks
from tests.factories import UserFactory
from tests.shops.channel_server import LINE_PUSH, MESSENGER_SEND
from tests.shops.factories import make_shop

WAIT_SECONDS = 60


def wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def worker(transactional_db):
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("default")
    with start_worker(
        celery_app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        queues=["default"],
        shutdown_timeout=30,
        loglevel="WARNING",
    ):
        yield


@pytest.fixture
def owner(transactional_db):
    return UserFactory()


def channel_conversation(owner, provider: str) -> Conversation:
    from shops.models import SocialIntegration

    shop = make_shop(owner=owner)
    integration = SocialIntegration.objects.create(
        shop=shop,
        provider=provider,
        account_id="acct",
        access_token="line-channel-access-token" if provider == "line" else "page-access-token",
    )
    return Conversation.objects.create(
        shop=shop,
        channel=provider,
        customer_handle="U1" if provider == "line" else "61234",
        integration=integration,
    )


def status_of(message) -> str:
    return Message.objects.values_list("delivery_status", flat=True).get(pk=message.pk)


def test_a_redelivered_task_does_not_send_the_message_twice(channel_server, worker, owner):
    conversation = channel_conversation(owner, "line")
    channel_server.hold()  # the first call to LINE waits until the second task has run

    with finished_tasks() as finished:
        with transaction.atomic():
            message = services.message_send(conversation=conversation, user=owner, text="on its way")
        # the same task again, as a broker redelivers it
        deliver_message.apply_async(args=[str(message.pk)])
        wait_for(channel_server.arrived.is_set, "the first task to call LINE")
        wait_for(lambda: len(finished) >= 1, "the second task to finish")
        channel_server.let_go()
        wait_for(lambda: status_of(message) == "sent", "the message to be sent")

    assert len(channel_server.seen(LINE_PUSH)) == 1
    message.refresh_from_db()
    assert (message.attempts, message.delivering_since) == (1, None)


def test_a_task_redelivered_after_the_message_was_sent_calls_nothing(channel_server, worker, owner):
    conversation = channel_conversation(owner, "facebook")
    with finished_tasks() as finished:
        with transaction.atomic():
            message = services.message_send(conversation=conversation, user=owner, text="hello")
        wait_for(lambda: status_of(message) == "sent", "the message to be sent")
        deliver_message.apply_async(args=[str(message.pk)])
        wait_for(lambda: len(finished) >= 2, "the redelivered task to finish")

    assert len(channel_server.seen(MESSENGER_SEND)) == 1


def test_a_429_is_retried_by_the_worker_after_retry_after_and_then_sent(
    channel_server, worker, owner, settings
):
    settings.CHANNEL_DELIVERY_BACKOFF_SECONDS = 0.1
    channel_server.script(LINE_PUSH, (429, {"Retry-After": "1"}, {"message": "Too many requests"}))
    conversation = channel_conversation(owner, "line")

    with transaction.atomic():
        message = services.message_send(conversation=conversation, user=owner, text="retry me")
    wait_for(lambda: status_of(message) == "sent", "the retried message to be sent")

    message.refresh_from_db()
    assert (message.attempts, message.error) == (2, "")
    first, second = channel_server.seen(LINE_PUSH)
    assert first.headers["x-line-retry-key"] == second.headers["x-line-retry-key"] == str(message.pk)


def test_a_rolled_back_message_is_never_delivered(channel_server, worker, owner):
    conversation = channel_conversation(owner, "line")

    with pytest.raises(RuntimeError), transaction.atomic():
        services.message_send(conversation=conversation, user=owner, text="never")
        raise RuntimeError("the request failed after writing")

    # a message that did commit afterwards is delivered; the rolled-back one never was queued
    with transaction.atomic():
        later = services.message_send(conversation=conversation, user=owner, text="later")
    wait_for(lambda: status_of(later) == "sent", "the committed message to be sent")
    assert [r.body["messages"][0]["text"] for r in channel_server.seen(LINE_PUSH)] == ["later"]
