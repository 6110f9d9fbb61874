"""Jobs run on Replicate: the official SDK starts the prediction against a local stand-in of
Replicate's API (tests/jobs/replicate_server.py), Replicate's signed webhooks walk the job through
its state machine, and the outputs are copied into the job's files."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from analytics.models import ErrorLog
from credits.models import WebhookLog
from credits.selectors import balance_get
from jobs import replicate, replicate_webhooks, services
from jobs.models import ApiUsageLog, Job, JobFile, JobKind
from jobs.worker_protocol import worker_kinds_for
from tests.conftest import assert_error
from tests.flows.concurrency import run_concurrently
from tests.jobs import replicate_server as rs

pytestmark = pytest.mark.django_db
KIND = "image_generate"
URL = "/api/webhooks/jobs/replicate"
PUBLIC = "https://app.example.com"


@pytest.fixture
def server(settings):
    stand_in = rs.ReplicateServer()
    httpd = rs.start(stand_in)
    settings.REPLICATE_API_TOKEN = rs.TOKEN
    settings.REPLICATE_API_BASE = stand_in.url
    settings.REPLICATE_WEBHOOK_SECRET = rs.WEBHOOK_SECRET
    settings.REPLICATE_KIND_VERSIONS = {KIND: rs.VERSION}
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.REPLICATE_TIMEOUT_SECONDS = 10
    yield stand_in
    httpd.shutdown()
    httpd.server_close()
    assert stand_in.violations == []


@pytest.fixture
def kind(db):
    return JobKind.objects.create(
        code=KIND, name="Image", credits_per_unit=2, executor="external", reported_by="worker", max_retries=2
    )


@pytest.fixture
def job(server, kind, funded_user):
    return services.job_create(user=funded_user, kind_code=KIND, params={"prompt": "a cat in a hat"})


@pytest.fixture
def started(job):
    prediction_id = replicate.replicate_prediction_start(job_id=job.pk)
    assert prediction_id
    return Job.objects.get(pk=job.pk)


def prediction(started, status: str, **extra) -> dict:
    return {
        "id": started.remote_id,
        "model": "acme/image-maker",
        "version": rs.VERSION,
        "input": {"prompt": "a cat in a hat"},
        "logs": "",
        "output": None,
        "error": None,
        "status": status,
        "created_at": "2026-12-04T10:00:00.000000Z",
        "urls": {},
        **extra,
    }


def deliver(
    api_client, payload: dict, *, webhook_id="msg_1", timestamp=None, secret=rs.WEBHOOK_SECRET, url=URL
):
    body = json.dumps(payload).encode()
    headers = rs.signed_headers(
        body,
        webhook_id=webhook_id,
        timestamp=int(time.time()) if timestamp is None else timestamp,
        secret=secret,
    )
    return api_client.generic("POST", url, body, content_type="application/json", **headers)


def webhook_path(request) -> str:
    """The path (with its query) of the webhook URL a creation request gave Replicate."""
    url = request.body["webhook"]
    assert url.startswith(PUBLIC)
    return url[len(PUBLIC) :]


# --- starting the prediction ---------------------------------------------------------------------


def test_a_queued_job_starts_one_prediction_with_the_webhook(server, job, funded_user):
    # when
    prediction_id = replicate.replicate_prediction_start(job_id=job.pk)
    again = replicate.replicate_prediction_start(job_id=job.pk)  # the task delivered twice

    # then
    assert again is None
    (request,) = server.created()
    assert request.headers["authorization"] == f"Bearer {rs.TOKEN}"
    assert request.body == {
        "version": rs.VERSION,
        "input": {"prompt": "a cat in a hat"},
        "webhook": f"{PUBLIC}/api/webhooks/jobs/replicate?job={job.pk}&attempt=1",
        "webhook_events_filter": ["start", "output", "completed"],
    }
    job.refresh_from_db()
    assert (job.status, job.remote_id, job.attempts) == ("preparing", prediction_id, 1)
    assert balance_get(user=funded_user) == 98
    usage = ApiUsageLog.objects.get(job=job)
    assert (usage.provider, usage.endpoint, usage.status_code, usage.succeeded) == (
        "replicate",
        "predictions.create",
        201,
        True,
    )


def test_job_create_announces_the_start_after_commit(
    server, kind, funded_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        services.job_create(user=funded_user, kind_code=KIND, params={})
    assert any(getattr(c, "__qualname__", "").startswith("enqueue_replicate_start") for c in callbacks)


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ("unknown_version", 422),
        ("bad_token", 401),
    ],
)
def test_a_refused_prediction_fails_the_job_and_refunds_it(
    server, job, funded_user, settings, answer, status
):
    # given
    if answer == "unknown_version":
        settings.REPLICATE_KIND_VERSIONS = {KIND: "0" * 64}
    else:
        settings.REPLICATE_API_TOKEN = "r8_wrong"

    # when
    assert replicate.replicate_prediction_start(job_id=job.pk) is None

    # then
    job.refresh_from_db()
    assert job.status == "failed"
    assert f"({status})" in job.error
    assert (job.credits_charged, job.credits_refunded) == (2, 2)
    assert balance_get(user=funded_user) == 100
    usage = ApiUsageLog.objects.get(job=job)
    assert (usage.status_code, usage.succeeded) == (status, False)
    assert ErrorLog.objects.filter(job_id=job.pk).count() == 1


def test_a_500_is_retried_with_backoff_then_the_prediction_starts(
    server, job, funded_user, django_capture_on_commit_callbacks
):
    # given
    server.script((500, {"title": "Internal server error", "status": 500}))

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        replicate.replicate_prediction_start(job_id=job.pk)

    # then: a failed attempt, retried later (the start is announced again, with a countdown)
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("retrying", 1)
    assert job.next_attempt_at > timezone.now()
    assert replicate.replicate_prediction_start(job_id=job.pk) is None  # not due yet
    assert any(getattr(c, "__qualname__", "").startswith("enqueue_replicate_start") for c in callbacks)

    # when the backoff has passed
    later = job.next_attempt_at + timedelta(seconds=1)
    prediction_id = replicate.replicate_prediction_start(job_id=job.pk, now=later)

    # then
    job.refresh_from_db()
    assert (job.status, job.attempts, job.remote_id) == ("preparing", 2, prediction_id)
    assert len(server.created()) == 2
    assert balance_get(user=funded_user) == 98  # charged once


def test_a_network_error_is_transient_and_the_last_one_fails_and_refunds(server, job, funded_user, settings):
    # given: nothing listens there
    settings.REPLICATE_API_BASE = "http://127.0.0.1:9"

    # when: three attempts (max_retries 2)
    for _ in range(3):
        Job.objects.filter(pk=job.pk).update(next_attempt_at=None)
        replicate.replicate_prediction_start(job_id=job.pk)

    # then
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("failed", 3)
    assert "Could not reach Replicate" in job.error
    assert balance_get(user=funded_user) == 100
    assert ApiUsageLog.objects.filter(job=job, succeeded=False, status_code=None).count() == 3


def test_the_pull_protocol_never_hands_out_a_replicate_kind(server, kind):
    from accounts.models import ServiceApiKey

    api_key = ServiceApiKey(name="w", scopes=["jobs:work"])
    assert KIND not in worker_kinds_for(api_key=api_key, requested=None)


# --- the webhook ---------------------------------------------------------------------------------


def test_processing_moves_the_job_to_processing_with_the_progress_of_the_logs(api_client, started):
    payload = prediction(started, "processing", logs="loading\n 10%|#  | 1/10\n 45%|####  | 45/100\n")

    response = deliver(api_client, payload)

    assert response.status_code == 200, response.content
    started.refresh_from_db()
    assert (started.status, started.progress) == ("processing", 45)
    log = WebhookLog.objects.get(provider="replicate")
    assert (log.source, log.outcome, log.applied, log.signature_valid, log.job_id) == (
        "jobs",
        "processed",
        True,
        True,
        started.pk,
    )
    assert log.headers["webhook-id"] == "msg_1"


def test_a_succeeded_prediction_redelivered_five_times_takes_effect_once(
    api_client, server, started, funded_user, django_capture_on_commit_callbacks
):
    # given
    server.files["out-0.png"] = (200, rs.png_bytes())
    payload = prediction(
        started, "succeeded", output=[server.file_url("out-0.png")], metrics={"predict_time": 1.5}
    )

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        answers = [deliver(api_client, payload, webhook_id="msg_done") for _ in range(5)]

    # then
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json()["outcome"] for a in answers] == ["applied"] + ["duplicate"] * 4
    started.refresh_from_db()
    assert started.status == "finalizing"
    assert started.result["replicate"]["metrics"] == {"predict_time": 1.5}
    outcomes = sorted(WebhookLog.objects.filter(provider="replicate").values_list("outcome", flat=True))
    assert outcomes == ["duplicate"] * 4 + ["processed"]
    assert sum(1 for c in callbacks if c.__qualname__.startswith("_apply.")) == 1  # one download

    # when the download task runs (twice, as a redelivered task would)
    assert replicate.replicate_outputs_fetch(job_id=started.pk) == "completed"
    assert replicate.replicate_outputs_fetch(job_id=started.pk) == "skipped"

    # then
    started.refresh_from_db()
    assert (started.status, started.successful_count) == ("completed", 1)
    (output,) = JobFile.objects.filter(job=started)
    assert (output.role, output.file_type, output.size) == ("output", "png", len(rs.png_bytes()))
    assert output.file.read() == rs.png_bytes()
    assert balance_get(user=funded_user) == 98
    assert ApiUsageLog.objects.filter(job=started, endpoint="output.download", status_code=200).count() == 1


def test_a_wrong_signature_is_401_logged_and_changes_nothing(api_client, started):
    wrong = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="

    response = deliver(api_client, prediction(started, "failed", error="boom"), secret=wrong)

    assert_error(response, 401, "invalid_signature")
    started.refresh_from_db()
    assert started.status == "preparing"
    log = WebhookLog.objects.get(provider="replicate")
    assert (log.outcome, log.signature_valid, log.applied, log.status_code) == (
        "invalid_signature",
        False,
        False,
        401,
    )


def test_a_stale_timestamp_is_401(api_client, started):
    response = deliver(api_client, prediction(started, "failed"), timestamp=int(time.time()) - 600)

    assert_error(response, 401, "stale_signature")
    started.refresh_from_db()
    assert started.status == "preparing"
    assert WebhookLog.objects.get(provider="replicate").outcome == "invalid_signature"


def test_missing_signature_headers_are_400(api_client, started):
    body = json.dumps(prediction(started, "failed")).encode()
    response = api_client.generic("POST", URL, body, content_type="application/json")
    assert_error(response, 400, "missing_signature")


def test_an_unknown_prediction_is_404_and_logged(api_client, started):
    payload = {**prediction(started, "succeeded"), "id": "unknownpredictionid"}

    response = deliver(api_client, payload)

    assert_error(response, 404)
    log = WebhookLog.objects.get(provider="replicate")
    assert (log.outcome, log.applied, log.signature_valid) == ("rejected", False, True)
    # Replicate redelivers; once the prediction is known, the same event applies
    assert Job.objects.get(pk=started.pk).status == "preparing"


def test_a_body_that_is_not_a_prediction_is_400(api_client, started):
    response = deliver(api_client, {"id": started.remote_id, "status": "exploded"})
    assert_error(response, 400, "validation_error")


@pytest.mark.parametrize("status", ["failed", "canceled"])
def test_a_failed_or_canceled_prediction_fails_the_job_and_refunds_once(
    api_client, started, funded_user, status
):
    payload = prediction(started, status, error="CUDA out of memory" if status == "failed" else None)

    first = deliver(api_client, payload, webhook_id="msg_a")
    second = deliver(api_client, payload, webhook_id="msg_b")  # even as another message

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["outcome"] == "duplicate"
    started.refresh_from_db()
    assert started.status == "failed"
    assert (started.credits_charged, started.credits_refunded) == (2, 2)
    assert balance_get(user=funded_user) == 100
    assert ErrorLog.objects.filter(job_id=started.pk).count() == 1


def test_a_late_start_event_does_not_move_a_finished_job(api_client, started):
    deliver(api_client, prediction(started, "failed"), webhook_id="msg_f")
    response = deliver(api_client, prediction(started, "starting"), webhook_id="msg_s")
    assert response.status_code == 200
    assert Job.objects.get(pk=started.pk).status == "failed"


# --- the outputs ---------------------------------------------------------------------------------


def succeeded(api_client, server, started, name: str, answer: tuple[int, bytes]) -> Job:
    server.files[name] = answer
    response = deliver(api_client, prediction(started, "succeeded", output=server.file_url(name)))
    assert response.status_code == 200
    return Job.objects.get(pk=started.pk)


def test_an_output_that_is_gone_fails_the_job_and_refunds(api_client, server, started, funded_user):
    job = succeeded(api_client, server, started, "gone.png", (404, b"Not found"))

    assert replicate.replicate_outputs_fetch(job_id=job.pk) == "failed"

    job.refresh_from_db()
    assert job.status == "failed"
    assert "404" in job.error
    assert balance_get(user=funded_user) == 100
    assert not JobFile.objects.filter(job=job).exists()


def test_an_output_download_500_is_transient(api_client, server, started):
    job = succeeded(api_client, server, started, "busy.png", (503, b"busy"))

    with pytest.raises(replicate.OutputUnavailable) as raised:
        replicate.replicate_outputs_fetch(job_id=job.pk)

    assert raised.value.transient
    assert Job.objects.get(pk=job.pk).status == "finalizing"
    # the retries given up: the job fails, refunded
    assert replicate.replicate_outputs_given_up(job_id=job.pk, error="503 five times") == "failed"
    assert Job.objects.get(pk=job.pk).credits_refunded == 2


def test_an_output_larger_than_the_limit_fails_the_job(api_client, server, started, settings):
    settings.REPLICATE_OUTPUT_MAX_BYTES = 10
    job = succeeded(api_client, server, started, "big.png", (200, rs.png_bytes()))

    assert replicate.replicate_outputs_fetch(job_id=job.pk) == "failed"
    assert "larger than 10 bytes" in Job.objects.get(pk=job.pk).error


def test_an_output_that_is_not_what_its_name_says_fails_the_job(api_client, server, started):
    job = succeeded(api_client, server, started, "fake.png", (200, b"<html>not an image</html>"))

    assert replicate.replicate_outputs_fetch(job_id=job.pk) == "failed"
    assert "does not look like" in Job.objects.get(pk=job.pk).error


def test_prediction_progress_reads_the_last_progress_bar():
    assert replicate_webhooks.prediction_progress("a\n 3%|\n 99%|###\n100%|####") == 99
    assert replicate_webhooks.prediction_progress("no bar") is None
    assert replicate_webhooks.prediction_progress(None) is None


def test_the_rescue_announces_queued_and_due_replicate_jobs_again(
    server, job, funded_user, django_capture_on_commit_callbacks
):
    # given: one queued job (its message lost) and one waiting for its backoff
    waiting = services.job_create(user=funded_user, kind_code=KIND, params={})
    server.script((503, {"title": "Service unavailable", "status": 503}))
    replicate.replicate_prediction_start(job_id=waiting.pk)
    assert Job.objects.get(pk=waiting.pk).status == "retrying"

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        announced = replicate.replicate_due_announce()

    # then
    assert announced == 1
    assert len(callbacks) == 1
    later = Job.objects.get(pk=waiting.pk).next_attempt_at + timedelta(seconds=1)
    assert replicate.replicate_due_announce(now=later) == 2


def test_cancelling_a_running_job_cancels_its_prediction_at_replicate(
    api_client, server, started, funded_user, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        services.job_cancel(job=started)

    # then: announced after commit; the task cancels the prediction once
    assert any(getattr(c, "__qualname__", "").startswith("enqueue_replicate_cancel") for c in callbacks)
    assert replicate.replicate_prediction_cancel(job_id=started.pk) is True
    (cancel,) = [r for r in server.requests if r.path.endswith("/cancel")]
    assert cancel.path == f"/v1/predictions/{started.remote_id}/cancel"
    assert cancel.headers["authorization"] == f"Bearer {rs.TOKEN}"
    assert balance_get(user=funded_user) == 100
    # Replicate's canceled webhook that follows changes nothing
    response = deliver(api_client, prediction(started, "canceled"))
    assert response.status_code == 200
    started.refresh_from_db()
    assert (started.status, started.credits_refunded) == ("cancelled", 2)


def test_one_good_signature_among_several_is_enough(api_client, started):
    body = json.dumps(prediction(started, "processing")).encode()
    headers = rs.signed_headers(body, webhook_id="msg_k", timestamp=int(time.time()))
    old_key = "v1," + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="  # a rotated-out secret's signature
    headers["HTTP_WEBHOOK_SIGNATURE"] = f"{old_key} {headers['HTTP_WEBHOOK_SIGNATURE']}"

    response = api_client.generic("POST", URL, body, content_type="application/json", **headers)

    assert response.status_code == 200, response.content
    assert Job.objects.get(pk=started.pk).status == "processing"


# --- predictions whose id the job never stored ------------------------------------------------------


def test_a_prediction_whose_id_was_never_stored_is_taken_by_the_attempt_its_url_names(
    api_client, server, job
):
    # given: Replicate created the prediction, but the start stopped before storing its id (the
    # state a worker killed between the call and the write leaves)
    prediction_id = replicate.replicate_prediction_start(job_id=job.pk)
    Job.objects.filter(pk=job.pk).update(remote_id="")
    (request,) = server.created()
    payload = {**server.predictions[prediction_id], "status": "processing", "logs": " 30%|###"}

    # when Replicate calls the URL it was given
    response = deliver(api_client, payload, url=webhook_path(request))

    # then the job follows the prediction again
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "applied"
    job.refresh_from_db()
    assert (job.remote_id, job.status, job.progress) == (prediction_id, "processing", 30)
    # and a delivery to the bare URL finds it by its id now
    done = deliver(api_client, {**payload, "status": "failed", "error": "boom"}, webhook_id="msg_2")
    assert done.status_code == 200, done.content
    assert Job.objects.get(pk=job.pk).status == "failed"


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_for_a_prediction_never_stored_all_apply(server, job):
    # given: the prediction's id was never stored
    prediction_id = replicate.replicate_prediction_start(job_id=job.pk)
    Job.objects.filter(pk=job.pk).update(remote_id="")
    (request,) = server.created()

    # when 8 of its deliveries arrive at once
    def deliver_one(i):
        payload = {**server.predictions[prediction_id], "status": "processing", "logs": f" {i + 1}%|#"}
        return deliver(APIClient(), payload, webhook_id=f"msg_{i}", url=webhook_path(request))

    answers = run_concurrently(8, deliver_one)

    # then the first takes the prediction for the job and every one applies to it
    assert [getattr(a, "status_code", a) for a in answers] == [200] * 8
    assert [a.json()["outcome"] for a in answers] == ["applied"] * 8
    job.refresh_from_db()
    assert (job.remote_id, job.status) == (prediction_id, "processing")
    assert not [r for r in server.requests if r.path.endswith("/cancel")]
    assert WebhookLog.objects.filter(provider="replicate", outcome="processed").count() == 8


def test_a_prediction_whose_creation_answer_was_lost_is_cancelled_when_its_webhook_arrives(
    api_client, server, job, funded_user, settings, django_capture_on_commit_callbacks
):
    # given: Replicate creates the prediction but answers after the client gave up
    settings.REPLICATE_TIMEOUT_SECONDS = 0.3
    server.answer_delay = 1.0
    assert replicate.replicate_prediction_start(job_id=job.pk) is None
    server.answer_delay, settings.REPLICATE_TIMEOUT_SECONDS = 0.0, 10
    job.refresh_from_db()
    assert (job.status, job.attempts, job.remote_id) == ("retrying", 1, "")
    (lost_request,) = server.created()
    (lost_id,) = server.predictions
    lost = {**server.predictions[lost_id], "status": "starting"}

    # when its first webhook arrives
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = deliver(api_client, lost, url=webhook_path(lost_request))

    # then it is answered and changes nothing; the prediction is cancelled at Replicate
    assert response.status_code == 200, response.content
    assert response.json() == {"outcome": "ignored", "job_uuid": str(job.pk), "status": None}
    assert [getattr(c, "__qualname__", "") for c in callbacks] == [
        "enqueue_replicate_orphan_cancel.<locals>.send"
    ]
    assert replicate.replicate_orphan_cancel(job_id=job.pk, prediction_id=lost_id) is True
    (cancel,) = [r for r in server.requests if r.path.endswith("/cancel")]
    assert cancel.path == f"/v1/predictions/{lost_id}/cancel"
    job.refresh_from_db()
    assert (job.status, job.attempts, job.remote_id) == ("retrying", 1, "")
    log = WebhookLog.objects.get(provider="replicate")
    assert (log.outcome, log.job_id) == ("ignored", job.pk)

    # when the retry starts its own prediction, the lost one's later webhooks still change nothing
    later = job.next_attempt_at + timedelta(seconds=1)
    second_id = replicate.replicate_prediction_start(job_id=job.pk, now=later)
    _, second_request = server.created()
    assert webhook_path(second_request).endswith(f"?job={job.pk}&attempt=2")
    late = deliver(
        api_client, {**lost, "status": "canceled"}, url=webhook_path(lost_request), webhook_id="m3"
    )
    current = deliver(
        api_client,
        {**server.predictions[second_id], "status": "processing"},
        url=webhook_path(second_request),
        webhook_id="m4",
    )

    # then
    assert late.json()["outcome"] == "ignored"
    assert current.json()["outcome"] == "applied"
    job.refresh_from_db()
    assert (job.status, job.attempts, job.remote_id) == ("processing", 2, second_id)
    assert balance_get(user=funded_user) == 98  # charged once, nothing refunded


def test_an_orphan_that_its_job_took_since_is_not_cancelled(server, started):
    assert replicate.replicate_orphan_cancel(job_id=started.pk, prediction_id=started.remote_id) is False
    assert not [r for r in server.requests if r.path.endswith("/cancel")]


@pytest.mark.parametrize(
    "query",
    ["?job=not-a-uuid&attempt=1", "?job={job}&attempt=-1", "?job={job}&attempt=99999999999", "?attempt=1"],
)
def test_a_webhook_url_naming_no_job_properly_leaves_an_unknown_prediction_unknown(
    api_client, server, job, query
):
    payload = {**prediction(job, "processing"), "id": "p_unknown"}

    response = deliver(api_client, payload, url=URL + query.format(job=job.pk))

    assert_error(response, 404, "not_found")
    job.refresh_from_db()
    assert (job.status, job.remote_id) == ("queued", "")


def test_a_webhook_url_naming_a_job_of_a_kind_not_run_on_replicate_is_404(api_client, server, funded_user):
    JobKind.objects.create(code="other_kind", credits_per_unit=1, executor="external", reported_by="worker")
    other = services.job_create(user=funded_user, kind_code="other_kind", params={})
    payload = {**prediction(other, "processing"), "id": "p_other"}

    response = deliver(api_client, payload, url=f"{URL}?job={other.pk}&attempt=1")

    assert_error(response, 404, "not_found")
    assert Job.objects.get(pk=other.pk).remote_id == ""
