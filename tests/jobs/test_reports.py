"""Who decides a job's outcome (JobKind.reported_by), counts in reports, silent external jobs,
idempotent retries, per-user external ids."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.services import api_key_create
from credits.models import CreditBalance, CreditTransaction
from credits.selectors import balance_get
from jobs import engine, services
from jobs.models import Job, JobDailyStat, JobKind
from tests.conftest import assert_error, client_for
from tests.factories import UserFactory
from tests.jobs.conftest import give_credits
from tests.jobs.test_concurrency import run_concurrently

pytestmark = pytest.mark.django_db


@pytest.fixture
def service_client(api_client):
    _, key = api_key_create(name="render-farm", scopes=["jobs:write"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return api_client


def test_seeded_kinds_say_who_decides_their_outcome():
    assert dict(
        JobKind.objects.filter(
            code__in=["video_render", "account_batch", "model_import", "model_export"]
        ).values_list("code", "reported_by")
    ) == {
        "video_render": "worker",
        "account_batch": "client",
        "model_import": "engine",
        "model_export": "engine",
    }


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_a_user_cannot_finish_a_worker_run_job_through_patch_stats(auth_client, funded_user, status):
    job = services.job_create(
        user=funded_user, kind_code="video_render", requested_count=4, external_id="r-1"
    )
    response = auth_client.patch(
        "/api/stats",
        {
            "job_id": "r-1",
            "kind": "video_render",
            "requested_count": 4,
            "status": status,
            "failed_count": 4 if status == "failed" else 0,
        },
        format="json",
    )
    assert_error(response, 403, "reported_by_worker")
    job.refresh_from_db()
    assert job.status == "queued" and job.credits_refunded == 0
    assert balance_get(user=funded_user) == 96


def test_a_user_may_still_create_and_move_a_worker_job_forward_but_not_finish_it(auth_client, funded_user):
    body = {"job_id": "r-2", "kind": "video_render", "requested_count": 2, "status": "processing"}
    assert auth_client.patch("/api/stats", body, format="json").json()["status"] == "processing"
    assert_error(
        auth_client.patch("/api/stats", {**body, "status": "completed"}, format="json"),
        403,
        "reported_by_worker",
    )
    assert Job.objects.get(external_id="r-2").status == "processing"


def test_a_service_key_finishes_a_worker_job_and_a_completed_report_without_counts_means_all_succeeded(
    service_client, funded_user
):
    services.job_create(user=funded_user, kind_code="video_render", requested_count=3, external_id="r-3")
    response = service_client.patch(
        "/api/stats",
        {
            "job_id": "r-3",
            "kind": "video_render",
            "requested_count": 3,
            "status": "completed",
            "user_id": str(funded_user.pk),
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "job_id": "r-3",
        "requested_count": 3,
        "successful_count": 3,
        "failed_count": 0,
        "status": "completed",
    }
    assert JobDailyStat.objects.get(user=funded_user).successful == 3


def test_a_client_job_is_finished_by_its_users_own_report(auth_client, funded_user):
    body = {
        "job_id": "c-1",
        "requested_count": 5,
        "successful_count": 4,
        "failed_count": 1,
        "status": "completed",
    }
    assert auth_client.patch("/api/stats", body, format="json").status_code == 200
    job = Job.objects.get(external_id="c-1")
    assert (job.status, job.credits_charged, job.credits_refunded) == ("completed", 5, 1)


def test_external_reports_on_an_engine_job_are_refused(auth_client, funded_user):
    job = services.job_create(
        user=funded_user, kind_code="model_export", external_id="e-1", params={"format": "stl"}
    )
    assert_error(
        auth_client.patch(
            "/api/stats",
            {"job_id": "e-1", "kind": "model_export", "requested_count": 1, "status": "completed"},
            format="json",
        ),
        403,
        "reported_by_engine",
    )
    assert Job.objects.get(pk=job.pk).status == "queued"


def _deliver(api_client, payload, secret="farm-secret"):
    from config.signing import sign

    body = json.dumps(payload).encode()
    return api_client.generic(
        "POST",
        "/api/webhooks/jobs/renderfarm",
        body,
        content_type="application/json",
        HTTP_X_SIGNATURE=sign(body, secret, int(time.time())),
    )


def test_webhook_counts_reach_the_job_and_the_stats(api_client, funded_user, settings):
    # given: 13 worker jobs completed and 7 failed by signed webhooks, some with counts
    settings.JOB_WEBHOOK_PROVIDERS = {"renderfarm": {"secret": "farm-secret", "kinds": []}}
    for i in range(20):
        services.job_create(
            user=funded_user, kind_code="video_render", requested_count=2, external_id=f"w-{i}"
        )
    for i in range(20):
        payload = {"event_id": f"ev-{i}", "job_id": f"w-{i}", "status": "completed" if i < 13 else "failed"}
        if i == 0:
            payload.update(successful_count=1, failed_count=1)
        assert _deliver(api_client, payload).status_code == 200
    # then: the jobs say 25 successful units and 15 failed, and so do the stats
    jobs = Job.objects.filter(user=funded_user)
    assert sum(j.successful_count for j in jobs) == 25 and sum(j.failed_count for j in jobs) == 15
    stats = client_for(funded_user).get("/api/stats").json()
    assert (stats["jobs"], stats["successful"], stats["failed"]) == (20, 25, 15)


def test_job_report_counts_only_grow_and_a_late_report_never_reopens(funded_user):
    job = services.job_create(user=funded_user, kind_code="video_render", requested_count=4)
    services.job_report(
        job_id=job.pk, reporter="webhook", status="processing", successful_count=2, progress=50
    )
    services.job_report(
        job_id=job.pk, reporter="webhook", status="processing", successful_count=1, progress=10
    )
    job.refresh_from_db()
    assert (job.successful_count, job.progress, job.heartbeat_at is not None) == (2, 50, True)
    services.job_report(
        job_id=job.pk, reporter="service", status="completed", successful_count=3, failed_count=1
    )
    services.job_report(job_id=job.pk, reporter="webhook", status="failed")
    job.refresh_from_db()
    assert (job.status, job.successful_count, job.failed_count, job.credits_refunded) == (
        "completed",
        3,
        1,
        1,
    )


def _silent_for(job, seconds):
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_the_rescue_fails_and_refunds_worker_and_client_jobs_silent_past_their_kinds_timeout(funded_user):
    render = services.job_create(user=funded_user, kind_code="video_render", requested_count=3)  # 7200 s
    services.job_report(job_id=render.pk, reporter="webhook", status="processing", successful_count=1)
    batch = services.job_stats_upsert(
        user=funded_user, external_id="b", status="processing", requested_count=2
    )
    fresh = services.job_stats_upsert(
        user=funded_user, external_id="f", status="processing", requested_count=1
    )
    never = services.job_create(user=funded_user, kind_code="video_render", requested_count=1)
    Job.objects.filter(pk=never.pk).update(queued_at=timezone.now() - timedelta(days=2))
    _silent_for(render, 7201)
    _silent_for(batch, 3601)
    _silent_for(fresh, 3500)
    assert balance_get(user=funded_user) == 100 - 3 - 2 - 1 - 1

    result = engine.jobs_rescue_stale()

    assert result["silent_failed"] == 3
    for job, refunded in ((render, 3), (batch, 2), (never, 1)):
        job.refresh_from_db()
        assert job.status == "failed" and "timeout" in job.error and job.credits_refunded == refunded
    render.refresh_from_db()
    assert (render.successful_count, render.failed_count) == (1, 2)
    assert Job.objects.get(pk=fresh.pk).status == "processing"
    assert balance_get(user=funded_user) == 99
    assert engine.jobs_rescue_stale()["silent_failed"] == 0
    assert CreditTransaction.objects.filter(user=funded_user, type="refund").count() == 3


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_retries_of_a_failed_job_create_one_retry_and_charge_once():
    user = UserFactory()
    give_credits(user, 10)
    job = services.job_create(user=user, kind_code="account_batch", requested_count=2)
    services.job_cancel(job=job)
    clients = [client_for(user) for _ in range(10)]

    responses = run_concurrently(10, lambda i: clients[i].post(f"/api/jobs/{job.pk}/retry"))

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 9 + [201], codes
    assert len({r.json()["id"] for r in responses}) == 1
    assert Job.objects.filter(retry_of=job).count() == 1
    assert CreditBalance.objects.get(user=user).balance == 8
    assert CreditTransaction.objects.filter(user=user, type="usage").count() == 2


def test_retrying_again_returns_the_same_retry_job_with_200(auth_client, funded_user):
    job = services.job_create(user=funded_user, kind_code="account_batch")
    services.job_cancel(job=job)
    first = auth_client.post(f"/api/jobs/{job.pk}/retry")
    again = auth_client.post(f"/api/jobs/{job.pk}/retry")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert balance_get(user=funded_user) == 99


def test_external_id_is_unique_per_user_not_globally(auth_client, other_client, funded_user, other_user):
    give_credits(other_user, 5)
    assert other_client.post("/api/jobs", {"kind": "account_batch", "external_id": "mine"}).status_code == 201
    # another user's id is no oracle: the caller gets their own job
    assert auth_client.post("/api/jobs", {"kind": "account_batch", "external_id": "mine"}).status_code == 201
    assert_error(
        auth_client.post("/api/jobs", {"kind": "account_batch", "external_id": "mine"}),
        409,
        "duplicate_external_id",
    )
    assert auth_client.get("/api/job/mine").json()["id"] == str(Job.objects.get(user=funded_user).pk)


@pytest.mark.parametrize("path", ["/api/job/%00", "/api/job/a%00b", "/api/job/x%0A", "/api/job/" + "x" * 300])
def test_impossible_external_ids_are_404_not_500(auth_client, path):
    assert_error(auth_client.get(path), 404, "not_found")
