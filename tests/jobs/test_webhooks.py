import json
import time

import pytest

from config.signing import sign
from credits.models import WebhookLog
from jobs import services
from jobs.models import ApiUsageLog, Artifact, Job, JobDailyStat
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db
SECRET = "farm-secret"
URL = "/api/webhooks/jobs/renderfarm"


@pytest.fixture(autouse=True)
def secret(settings):
    settings.JOB_WEBHOOK_PROVIDERS = {"renderfarm": {"secret": SECRET, "kinds": []}}


@pytest.fixture
def job(funded_user):
    return services.job_create(
        user=funded_user, kind_code="video_render", requested_count=2, external_id="render-1"
    )


def deliver(api_client, payload, *, secret=SECRET, timestamp=None, url=URL):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    header = sign(body, secret, int(time.time()) if timestamp is None else timestamp)
    return api_client.generic("POST", url, body, content_type="application/json", HTTP_X_SIGNATURE=header)


def test_signed_progress_report_moves_the_job_to_processing(api_client, job):
    response = deliver(
        api_client, {"event_id": "e1", "job_id": "render-1", "status": "processing", "progress": 40}
    )
    assert response.status_code == 200, response.content
    job.refresh_from_db()
    assert (job.status, job.progress) == ("processing", 40)
    log = WebhookLog.objects.get(event_id="e1")
    assert (log.source, log.provider, log.outcome, log.applied, log.job_id) == (
        "jobs",
        "renderfarm",
        "processed",
        True,
        job.pk,
    )


def test_completion_with_artifacts_and_metrics_applies_once(api_client, job, funded_user):
    payload = {
        "event_id": "e2",
        "job_id": "render-1",
        "status": "completed",
        "output": {"url": "https://cdn/x.mp4", "artifacts": [{"type": "video", "name": "x.mp4"}]},
        "metrics": {
            "endpoint": "/render",
            "units": 2,
            "cost": "0.1250",
            "duration_ms": 900,
            "status_code": 200,
        },
    }
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
    assert_error(response, 400, "missing_signature")  # one receiver: as for payments
    assert Job.objects.get(pk=job.pk).status == "queued"
    assert WebhookLog.objects.filter(source="jobs", signature_valid=False).count() == 3


def test_provider_without_a_secret_is_404(api_client, job):
    assert_error(
        deliver(api_client, {"event_id": "e7", "job_id": "render-1"}, url="/api/webhooks/jobs/unknownfarm"),
        404,
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"[1, 2]",
        {"event_id": "e8"},
        {"event_id": "e8", "job_id": "render-1", "status": "exploded"},
        {"event_id": "e8", "job_id": "render-1", "progress": 101},
        {"event_id": "e8", "job_id": "render-1", "metrics": {"cost": "-1"}},
    ],
)
def test_malformed_signed_payload_is_400(api_client, job, payload):
    assert_error(deliver(api_client, payload), 400)
    assert Job.objects.get(pk=job.pk).status == "queued"


def test_unknown_job_is_404(api_client, job):
    assert_error(deliver(api_client, {"event_id": "e9", "job_id": "nope", "status": "completed"}), 404)


# --- the shared receiver's guarantees (issue 9) ------------------------------------------------


def test_every_refusal_is_logged(api_client, job):
    deliver(api_client, {"event_id": "e9", "job_id": "nope", "status": "completed"})
    deliver(api_client, b"{not json")
    deliver(api_client, {"event_id": "e7", "job_id": "render-1"}, url="/api/webhooks/jobs/unknownfarm")

    rows = WebhookLog.objects.filter(source="jobs")
    assert sorted((r.provider, r.status_code) for r in rows) == [
        ("renderfarm", 400),
        ("renderfarm", 404),
        ("unknownfarm", 404),
    ]
    assert not rows.filter(applied=True).exists()


@pytest.mark.parametrize(
    "body",
    [
        b'{"event_id": "n1", "job_id": "render-1", "progress": NaN}',
        b'{"event_id": "n1", "job_id": "render-1", "output": {"x": 1e400}}',
        b'{"event_id": "n1", "job_id": "render-1", "output": {"x": Infinity}}',
    ],
)
def test_non_finite_numbers_are_a_logged_400(api_client, job, body):
    assert_error(deliver(api_client, body), 400, "parse_error")

    log = WebhookLog.objects.get(source="jobs")
    assert (log.status_code, log.signature_valid, log.payload) == (400, True, None)
    assert Job.objects.get(pk=job.pk).status == "queued"


def test_nul_and_lone_surrogates_are_sanitised_for_the_log(api_client, job):
    body = (
        b'{"event_id": "s1", "job_id": "render-1", "status": "processing", "error": "a\\u0000b", '
        b'"output": {"note": "\\ud800", "k\\u0000": 1}}'
    )

    response = deliver(api_client, body)

    assert response.status_code in (200, 400), response.content
    log = WebhookLog.objects.get(source="jobs")
    assert log.status_code == response.status_code
    assert "\x00" not in log.raw_body


def test_bad_signature_bodies_are_truncated_in_the_log(api_client, job):
    import hashlib

    body = json.dumps({"event_id": "big", "job_id": "render-1", "pad": "x" * 64_000}).encode()

    assert_error(deliver(api_client, body, secret="wrong"), 401, "invalid_signature")

    log = WebhookLog.objects.get(source="jobs")
    assert len(log.raw_body) == 4096
    assert (log.body_length, log.body_sha256) == (len(body), hashlib.sha256(body).hexdigest())
    assert log.payload is None


def test_a_nul_provider_name_is_a_404_envelope(api_client):
    for url in ("/api/webhooks/payments/%00", "/api/webhooks/jobs/%00"):
        assert_error(api_client.post(url, {}, format="json"), 404)


def test_a_provider_may_drive_only_its_kinds(api_client, job, funded_user, settings):
    other = services.job_create(
        user=funded_user, kind_code="account_batch", requested_count=1, external_id="batch-1"
    )
    settings.JOB_WEBHOOK_PROVIDERS = {"renderfarm": {"secret": SECRET, "kinds": ["account_batch"]}}

    refused = deliver(api_client, {"event_id": "k1", "job_id": "render-1", "status": "completed"})
    accepted = deliver(api_client, {"event_id": "k2", "job_id": "batch-1", "status": "processing"})

    assert_error(refused, 404)
    assert accepted.status_code == 200, accepted.content
    assert Job.objects.get(pk=job.pk).status == "queued"
    assert Job.objects.get(pk=other.pk).status == "processing"
    assert WebhookLog.objects.filter(source="jobs").count() == 2


def test_by_default_a_provider_drives_only_worker_kinds(api_client, funded_user):
    from jobs.models import JobKind

    client_kind = JobKind.objects.filter(reported_by=JobKind.ReportedBy.CLIENT).first()
    if client_kind is None:
        pytest.skip("no client-reported kind seeded")
    job = services.job_create(
        user=funded_user, kind_code=client_kind.code, requested_count=1, external_id="client-1"
    )

    assert_error(deliver(api_client, {"event_id": "d1", "job_id": "client-1", "status": "processing"}), 404)
    assert Job.objects.get(pk=job.pk).status == job.status


def test_an_ambiguous_external_id_is_409_and_job_uuid_names_the_job(api_client, job):
    from credits.services import credits_grant
    from tests.factories import UserFactory

    someone = UserFactory()
    credits_grant(user=someone, amount=100, idempotency_key="g-someone")
    twin = services.job_create(
        user=someone, kind_code="video_render", requested_count=2, external_id="render-1"
    )

    assert_error(
        deliver(api_client, {"event_id": "a1", "job_id": "render-1", "status": "processing"}),
        409,
        "ambiguous_job_id",
    )
    response = deliver(api_client, {"event_id": "a2", "job_uuid": str(twin.pk), "status": "processing"})

    assert response.status_code == 200, response.content
    assert Job.objects.get(pk=twin.pk).status == "processing"
    assert Job.objects.get(pk=job.pk).status == "queued"


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_duplicate_deliveries_are_all_logged_and_applied_once(api_client, reference_data):
    import threading

    from django.db import connection

    from credits.models import CreditTransaction
    from credits.services import credits_grant
    from tests.factories import UserFactory

    user = UserFactory()
    credits_grant(user=user, amount=100, idempotency_key="g-conc")
    job = services.job_create(user=user, kind_code="video_render", requested_count=2, external_id="conc-1")
    body = json.dumps({"event_id": "dup", "job_id": "conc-1", "status": "failed", "error": "x"}).encode()
    header = sign(body, SECRET, int(time.time()))
    barrier = threading.Barrier(10)
    statuses = []

    def post():
        from rest_framework.test import APIClient

        try:
            barrier.wait()
            response = APIClient().generic(
                "POST", URL, body, content_type="application/json", HTTP_X_SIGNATURE=header
            )
            statuses.append((response.status_code, response.json().get("outcome")))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(statuses) == [(200, "applied")] + [(200, "duplicate")] * 9
    assert WebhookLog.objects.filter(source="jobs", event_id="dup").count() == 10
    assert WebhookLog.objects.filter(source="jobs", event_id="dup", applied=True).count() == 1
    assert Job.objects.get(pk=job.pk).status == "failed"
    assert CreditTransaction.objects.filter(job_id=job.pk, type="refund").count() == 1
