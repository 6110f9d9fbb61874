"""JSON-line logs with a request id that follows the request into the Celery tasks it enqueues."""

import json
import logging
import time
import uuid

import pytest
import structlog
from django.conf import settings
from django.utils.module_loading import import_string

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _json_formatter():
    spec = dict(settings.LOGGING["formatters"]["json"])
    factory = spec.pop("()")
    return factory(**spec) if not isinstance(factory, str) else import_string(factory)(**spec)


def test_a_valid_request_id_is_kept_and_echoed(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="edge-7f3a.b_c")
    assert response["X-Request-ID"] == "edge-7f3a.b_c"


@pytest.mark.parametrize("hostile", ["two words", "x" * 65, "line\nbreak", '{"json":1}'])
def test_a_hostile_request_id_is_replaced_by_a_fresh_one(client, hostile):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=hostile)
    assert str(uuid.UUID(response["X-Request-ID"])) == response["X-Request-ID"]


def test_every_response_carries_a_request_id(client):
    first, second = client.get("/healthz"), client.get("/api/nowhere")
    assert first["X-Request-ID"] != second["X-Request-ID"]
    assert second.status_code == 404 and second.json()["error"]["code"] == "not_found"


def test_a_plain_logging_call_is_one_json_line_with_the_bound_request_id():
    structlog.contextvars.bind_contextvars(request_id="req-42")
    try:
        record = logging.LogRecord(
            "credits.services", logging.WARNING, __file__, 1, "balance %s for %s", (7, "u@example.com"), None
        )
        line = _json_formatter().format(record)
    finally:
        structlog.contextvars.clear_contextvars()

    data = json.loads(line)
    assert "\n" not in line
    assert data["event"] == "balance 7 for u@example.com"
    assert (data["request_id"], data["level"], data["logger"]) == ("req-42", "warning", "credits.services")
    assert data["timestamp"].endswith("Z")


@pytest.mark.django_db(transaction=True)
def test_the_request_id_reaches_the_celery_task_the_request_enqueued(client, mail_worker, mailoutbox, caplog):
    # given a user asking for a password reset (the request enqueues an email task when its
    # transaction commits, as in production: no test-wide transaction here)
    user = UserFactory()
    caplog.set_level(logging.INFO)

    # when the request carries an id and a real worker runs the task it enqueued
    response = client.post(
        "/api/auth/password/reset",
        {"email": user.email},
        content_type="application/json",
        HTTP_X_REQUEST_ID="req-celery-1",
    )
    assert response.status_code == 202
    deadline = time.monotonic() + 30
    while not mailoutbox and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(mailoutbox) == 1

    def task_events():
        return [
            r.msg
            for r in caplog.records
            if isinstance(r.msg, dict) and r.msg.get("event") in ("task_started", "task_succeeded")
        ]

    # (wait for both kinds: a second embedded worker in this process logs each event twice, so
    # counting lines could stop at two `task_started` before the task has finished)
    while {e["event"] for e in task_events()} != {
        "task_started",
        "task_succeeded",
    } and time.monotonic() < deadline:
        time.sleep(0.05)

    # then the worker's log lines for that task carry the request's id
    events = task_events()
    assert {e["event"] for e in events} == {"task_started", "task_succeeded"}
    assert all(e.get("request_id") == "req-celery-1" for e in events), events
