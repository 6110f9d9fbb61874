"""A Replicate job as deployed: the API creates it, a real Celery worker (started by the test)
starts the prediction through the SDK against the local stand-in of Replicate's API, a signed
`succeeded` webhook arrives, the worker downloads the output, and the owner downloads it through
the URL the API returns."""

import json
import time

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app as celery_app
from credits.selectors import balance_get
from jobs.models import Job, JobKind
from tests.conftest import client_for
from tests.factories import UserFactory
from tests.jobs import replicate_server as rs
from tests.jobs.conftest import give_credits

pytestmark = pytest.mark.django_db(transaction=True)
KIND = "image_generate"
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
def server(settings):
    stand_in = rs.ReplicateServer()
    httpd = rs.start(stand_in)
    settings.REPLICATE_API_TOKEN = rs.TOKEN
    settings.REPLICATE_API_BASE = stand_in.url
    settings.REPLICATE_WEBHOOK_SECRET = rs.WEBHOOK_SECRET
    settings.REPLICATE_KIND_VERSIONS = {KIND: rs.VERSION}
    settings.PUBLIC_BASE_URL = "https://app.example.com"
    yield stand_in
    httpd.shutdown()
    httpd.server_close()
    assert stand_in.violations == []


@pytest.fixture
def worker(transactional_db, drop_other_connections):
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


def test_a_replicate_job_runs_from_creation_to_a_downloadable_output(server, worker):
    # given
    JobKind.objects.create(code=KIND, credits_per_unit=3, executor="external", reported_by="worker")
    user = UserFactory()
    give_credits(user, 10)
    client = client_for(user)
    server.files["out-0.png"] = (200, rs.png_bytes())

    # when the user creates the job, the worker starts its prediction
    response = client.post("/api/jobs", {"kind": KIND, "params": {"prompt": "a lighthouse"}}, format="json")
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    remote_id = wait_for(
        lambda: (
            Job.objects.filter(pk=job_id).exclude(remote_id="").values_list("remote_id", flat=True).first()
        ),
        "the prediction to start",
    )
    (request,) = server.created()
    assert request.body["input"] == {"prompt": "a lighthouse"}
    webhook = request.body["webhook"]
    assert webhook == f"https://app.example.com/api/webhooks/jobs/replicate?job={job_id}&attempt=1"

    # and Replicate reports it succeeded (signed as Replicate signs)
    prediction = {
        **server.predictions[remote_id],
        "status": "succeeded",
        "output": [server.file_url("out-0.png")],
    }
    body = json.dumps(prediction).encode()
    headers = rs.signed_headers(body, webhook_id="msg_e2e", timestamp=int(time.time()))
    answer = client.generic(
        "POST",
        webhook.removeprefix("https://app.example.com"),
        body,
        content_type="application/json",
        **headers,
    )
    assert answer.status_code == 200, answer.content

    # then the worker copies the output and completes the job
    wait_for(lambda: Job.objects.filter(pk=job_id, status="completed").exists(), "the job to complete")
    job = client.get(f"/api/jobs/{job_id}").json()
    (output,) = job["files"]
    download = client.get(output["download_url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == rs.png_bytes()
    assert balance_get(user=user) == 7  # charged once


def test_a_prediction_whose_creation_answer_was_lost_is_cancelled_by_the_worker(server, worker, settings):
    # given: Replicate creates the prediction but answers after the worker's client gave up (and
    # the job's retry is far away)
    settings.REPLICATE_TIMEOUT_SECONDS = 0.5
    settings.JOBS_RETRY_BASE_SECONDS = 3600
    server.answer_delay = 2.0
    JobKind.objects.create(code=KIND, credits_per_unit=3, executor="external", reported_by="worker")
    user = UserFactory()
    give_credits(user, 10)
    client = client_for(user)
    response = client.post("/api/jobs", {"kind": KIND, "params": {"prompt": "a lighthouse"}}, format="json")
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    wait_for(lambda: Job.objects.filter(pk=job_id, status="retrying").exists(), "the failed start")
    server.answer_delay, settings.REPLICATE_TIMEOUT_SECONDS = 0.0, 10  # the cancel is answered in time
    (request,) = server.created()
    (lost_id,) = server.predictions

    # when its first webhook arrives at the URL Replicate was given
    body = json.dumps({**server.predictions[lost_id], "status": "starting"}).encode()
    headers = rs.signed_headers(body, webhook_id="msg_lost", timestamp=int(time.time()))
    answer = client.generic(
        "POST",
        request.body["webhook"].removeprefix("https://app.example.com"),
        body,
        content_type="application/json",
        **headers,
    )

    # then the worker cancels the prediction at Replicate; the job waits for its retry
    assert answer.status_code == 200, answer.content
    assert answer.json()["outcome"] == "ignored"
    wait_for(lambda: server.predictions[lost_id]["status"] == "canceled", "the orphan's cancel")
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.attempts, job.remote_id) == ("retrying", 1, "")
    assert balance_get(user=user) == 7  # charged once
