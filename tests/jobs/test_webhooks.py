import json
import time

import pytest

from config.signing import sign
from jobs import services
from jobs.models import ApiUsageLog, Artifact, Job, JobDailyStat, JobWebhookEvent
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db
SECRET = "farm-secret"
URL = "/api/webhooks/jobs/renderfarm"


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("JOB_WEBHOOK_SECRET_RENDERFARM", SECRET)


@pytest.fixture
def job(funded_user):
    return services.job_create(user=funded_user, kind_code="video_render", requested_count=2,
                               external_id="render-1")


def deliver(api_client, payload, *, secret=SECRET, timestamp=None, url=URL):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    header = sign(body, secret, int(time.time()) if timestamp is None else timestamp)
    return api_client.generic("POST", url, body, content_type="application/json", HTTP_X_SIGNATURE=header)


def test_signed_progress_report_moves_the_job_to_processing(api_client, job):
    response = deliver(api_client, {"event_id": "e1", "job_id": "render-1", "status": "processing",
                                    "progress": 40})
    assert response.status_code == 200, response.content
    job.refresh_from_db()
    assert (job.status, job.progress) == ("processing", 40)
    assert JobWebhookEvent.objects.get(event_id="e1").outcome == "applied"


def test_completion_with_artifacts_and_metrics_applies_once(api_client, job, funded_user):
    payload = {"event_id": "e2", "job_id": "render-1", "status": "completed",
               "output": {"url": "https://cdn/x.mp4", "artifacts": [{"type": "video", "name": "x.mp4"}]},
               "metrics": {"endpoint": "/render", "units": 2, "cost": "0.1250", "duration_ms": 900,
                           "status_code": 200}}
    assert deliver(api_client, payload).json()["outcome"] == "applied"
    assert deliver(api_client, payload).json()["outcome"] == "duplicate"
    job.refresh_from_db()
    assert job.status == "completed" and job.result == {"url": "https://cdn/x.mp4"}
    assert Artifact.objects.filter(job=job).count() == 1
    assert ApiUsageLog.objects.get(job=job).cost == pytest.approx(0.125)
    assert JobDailyStat.objects.get(user=funded_user).vault_items == 1


def test_late_processing_report_after_completed_does_not_reopen(api_client, job):
    deliver(api_client, {"event_id": "e3", "job_id": "render-1", "status": "completed"})
    deliver(api_client, {"event_id": "e4", "job_id": "render-1", "status": "processing", "progress": 5})
    job.refresh_from_db()
    assert job.status == "completed" and job.progress == 100


def test_failed_report_refunds_the_charge(api_client, job, funded_user):
    from credits.selectors import balance_get

    deliver(api_client, {"event_id": "e5", "job_id": "render-1", "status": "failed", "error": "gpu died"})
    job.refresh_from_db()
    assert job.status == "failed" and job.error == "gpu died"
    assert balance_get(user=funded_user) == 100


def test_bad_or_stale_signature_is_401_and_logged(api_client, job):
    payload = {"event_id": "e6", "job_id": "render-1", "status": "completed"}
    assert_error(deliver(api_client, payload, secret="wrong"), 401, "invalid_signature")
    assert_error(deliver(api_client, payload, timestamp=int(time.time()) - 3600), 401, "stale_signature")
    response = api_client.post(URL, payload, format="json")
    assert_error(response, 401, "missing_signature")
    assert Job.objects.get(pk=job.pk).status == "queued"
    assert JobWebhookEvent.objects.filter(signature_valid=False).count() == 3


def test_provider_without_a_secret_is_404(api_client, job):
    assert_error(deliver(api_client, {"event_id": "e7", "job_id": "render-1"},
                         url="/api/webhooks/jobs/unknownfarm"), 404)


@pytest.mark.parametrize("payload", [b"{not json", b"[1, 2]", {"event_id": "e8"},
                                     {"event_id": "e8", "job_id": "render-1", "status": "exploded"},
                                     {"event_id": "e8", "job_id": "render-1", "progress": 101},
                                     {"event_id": "e8", "job_id": "render-1", "metrics": {"cost": "-1"}}])
def test_malformed_signed_payload_is_400(api_client, job, payload):
    assert_error(deliver(api_client, payload), 400)
    assert Job.objects.get(pk=job.pk).status == "queued"


def test_unknown_job_is_404(api_client, job):
    assert_error(deliver(api_client, {"event_id": "e9", "job_id": "nope", "status": "completed"}), 404)
