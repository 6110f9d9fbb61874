"""The external workers' pull protocol: claim with a lease, heartbeat, signed input downloads,
uploads, report; 409 `lease_lost`; an expired lease is a failed attempt."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import api_key_create
from credits.models import CreditBalance, CreditTransaction
from jobs import engine
from jobs.models import Artifact, Job, JobKind
from tests.conftest import assert_error, client_for
from tests.factories import UserFactory
from tests.jobs.conftest import give_credits
from tests.jobs.test_concurrency import run_concurrently

MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def key_client(scopes=("jobs:work",), kinds=()) -> tuple[APIClient, object]:
    api_key, key = api_key_create(name="worker", scopes=list(scopes))
    if kinds:
        api_key.job_kinds = list(kinds)
        api_key.save(update_fields=["job_kinds"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client, api_key


def render_job(user, *, clips=1, requested_count=1, priority=0) -> dict:
    client = client_for(user)
    response = client.post(
        "/api/jobs",
        {"kind": "video_render", "requested_count": requested_count, "priority": priority},
        format="json",
    )
    assert response.status_code == 201, response.content
    job = response.json()
    for i in range(clips):
        upload = SimpleUploadedFile(f"clip{i}.mp4", MP4, content_type="video/mp4")
        r = client.post(f"/api/jobs/{job['id']}/files", {"file": upload, "role": "input"}, format="multipart")
        assert r.status_code == 201, r.content
    return job


@pytest.fixture
def renderer(db):
    user = UserFactory()
    give_credits(user, 20)
    return user


def claim(client, **body):
    response = client.post("/api/worker/claim", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()["jobs"]


def balance(user) -> int:
    return CreditBalance.objects.get(user=user).balance


@pytest.mark.django_db
def test_a_claimed_render_runs_to_completed_through_the_protocol_and_is_charged_once(renderer):
    # given a queued render with one input clip
    job = render_job(renderer, clips=1)
    worker, _ = key_client()
    # when a worker claims it
    (claimed,) = claim(worker, kinds=["video_render"], max=5, lease_seconds=30)
    # then it gets the job with its attempt, lease and a signed input URL needing no key
    assert claimed["id"] == job["id"] and claimed["attempt"] == 1 and claimed["kind"] == "video_render"
    (clip,) = claimed["input_files"]
    download = APIClient().get(clip["download_url"])
    assert download.status_code == 200 and b"".join(download.streaming_content) == MP4
    assert Job.objects.get(pk=job["id"]).status == "preparing"
    # heartbeat → processing, lease extended
    hb = worker.post(f"/api/worker/jobs/{job['id']}/heartbeat", {"attempt": 1, "progress": 40}, format="json")
    assert hb.status_code == 200 and hb.json()["status"] == "processing" and hb.json()["progress"] == 40
    # uploads
    for role, name, data in (("output", "final.mp4", MP4), ("thumbnail", "thumb.jpg", JPEG)):
        upload = SimpleUploadedFile(name, data)
        r = worker.post(
            f"/api/worker/jobs/{job['id']}/files",
            {"attempt": 1, "role": role, "file": upload},
            format="multipart",
        )
        assert r.status_code == 201, r.content
    report = worker.post(
        f"/api/worker/jobs/{job['id']}/report",
        {"attempt": 1, "status": "completed", "metrics": {"duration": 1.5, "codec": "h264"}},
        format="json",
    )
    assert report.status_code == 200, report.content
    assert report.json()["status"] == "completed" and report.json()["successful_count"] == 1
    # the owner sees the outputs and was charged exactly once
    files = client_for(renderer).get(f"/api/jobs/{job['id']}/files").json()["results"]
    assert sorted(f["role"] for f in files) == ["input", "output", "thumbnail"]
    assert balance(renderer) == 19
    assert CreditTransaction.objects.filter(job_id=job["id"]).count() == 1
    assert Job.objects.get(pk=job["id"]).result["metrics"]["codec"] == "h264"


@pytest.mark.django_db
def test_a_failed_unit_is_refunded_on_completion(renderer):
    job = render_job(renderer, clips=2, requested_count=2)
    worker, _ = key_client()
    claim(worker, max=1)
    r = worker.post(
        f"/api/worker/jobs/{job['id']}/report",
        {"attempt": 1, "status": "completed", "successful_count": 1, "failed_count": 1},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert balance(renderer) == 19  # charged 2, one unit refunded


@pytest.mark.django_db
def test_claim_returns_an_empty_list_without_work_and_highest_priority_first(renderer):
    worker, _ = key_client()
    assert claim(worker) == []
    low = render_job(renderer, clips=0, priority=0)
    high = render_job(renderer, clips=0, priority=5)
    assert [j["id"] for j in claim(worker, max=2)] == [high["id"], low["id"]]
    assert claim(worker, max=2) == []


@pytest.mark.django_db
def test_a_report_or_file_from_an_attempt_that_lost_its_lease_is_409_lease_lost(renderer):
    job = render_job(renderer)
    worker, _ = key_client()
    claim(worker, lease_seconds=30)
    # given the lease expired and the rescue made it a failed attempt, claimed again as attempt 2
    Job.objects.filter(pk=job["id"]).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    late = worker.post(f"/api/worker/jobs/{job['id']}/heartbeat", {"attempt": 1}, format="json")
    assert_error(late, 409, "lease_lost")
    assert engine.jobs_rescue_stale()["leases_expired"] == 1
    assert Job.objects.get(pk=job["id"]).status == "retrying"
    Job.objects.filter(pk=job["id"]).update(next_attempt_at=timezone.now())
    (again,) = claim(worker)
    assert again["attempt"] == 2
    # then attempt 1 can neither report nor upload
    stale = worker.post(
        f"/api/worker/jobs/{job['id']}/report", {"attempt": 1, "status": "completed"}, format="json"
    )
    assert_error(stale, 409, "lease_lost")
    upload = SimpleUploadedFile("final.mp4", MP4)
    stale_file = worker.post(
        f"/api/worker/jobs/{job['id']}/files",
        {"attempt": 1, "role": "output", "file": upload},
        format="multipart",
    )
    assert_error(stale_file, 409, "lease_lost")
    assert Job.objects.get(pk=job["id"]).status == "preparing"
    # another key cannot ride on the attempt number either
    intruder, _ = key_client()
    assert_error(
        intruder.post(
            f"/api/worker/jobs/{job['id']}/report", {"attempt": 2, "status": "completed"}, format="json"
        ),
        409,
        "lease_lost",
    )


@pytest.mark.django_db
def test_expired_leases_retry_with_backoff_then_fail_and_refund_once(renderer, settings):
    settings.JOBS_RETRY_BASE_SECONDS = 0.001
    job = render_job(renderer)
    JobKind.objects.filter(code="video_render").update(max_retries=1)
    Job.objects.filter(pk=job["id"]).update(max_retries=1)
    worker, _ = key_client()
    for attempt in (1, 2):
        Job.objects.filter(pk=job["id"]).update(next_attempt_at=None)
        (claimed,) = claim(worker, lease_seconds=1)
        assert claimed["attempt"] == attempt
        Job.objects.filter(pk=job["id"]).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        engine.jobs_rescue_stale()
    final = Job.objects.get(pk=job["id"])
    assert final.status == "failed" and final.attempts == 2
    assert balance(renderer) == 20
    assert engine.jobs_rescue_stale()["leases_expired"] == 0
    assert balance(renderer) == 20


@pytest.mark.django_db
def test_a_worker_reporting_a_retryable_failure_gets_the_job_back_later(renderer):
    job = render_job(renderer)
    worker, _ = key_client()
    claim(worker)
    r = worker.post(
        f"/api/worker/jobs/{job['id']}/report",
        {"attempt": 1, "status": "failed", "error": "disk full", "retry": True},
        format="json",
    )
    assert r.status_code == 200 and r.json()["status"] == "retrying"
    assert claim(worker) == []  # backing off
    assert balance(renderer) == 19


@pytest.mark.django_db
def test_a_key_sees_only_jobs_of_its_kinds(renderer):
    JobKind.objects.create(
        code="subtitle", credits_per_unit=0, executor="external", reported_by="worker", timeout=600
    )
    job = render_job(renderer)
    subtitle_worker, _ = key_client(kinds=["subtitle"])
    # claiming a kind it is not bound to is refused; its own kinds have no work
    assert_error(
        subtitle_worker.post("/api/worker/claim", {"kinds": ["video_render"]}, format="json"),
        403,
        "kind_not_allowed",
    )
    assert claim(subtitle_worker) == []
    # a render worker claims it; the subtitle key cannot touch it (404: not its kind)
    render_worker, _ = key_client(kinds=["video_render"])
    claim(render_worker)
    for path, body in (("heartbeat", {"attempt": 1}), ("report", {"attempt": 1, "status": "completed"})):
        assert_error(subtitle_worker.post(f"/api/worker/jobs/{job['id']}/{path}", body, format="json"), 404)
    # engine and client kinds are never claimable
    assert_error(
        render_worker.post("/api/worker/claim", {"kinds": ["account_batch"]}, format="json"),
        403,
        "kind_not_allowed",
    )


@pytest.mark.django_db
def test_worker_endpoints_refuse_anonymous_users_and_keys_without_the_scope(renderer):
    job = render_job(renderer)
    assert_error(APIClient().post("/api/worker/claim", {}, format="json"), 401)
    assert_error(client_for(renderer).post("/api/worker/claim", {}, format="json"), 401)
    writer, _ = key_client(scopes=("jobs:write",))
    assert_error(writer.post("/api/worker/claim", {}, format="json"), 403, "insufficient_scope")
    assert_error(writer.post(f"/api/worker/jobs/{job['id']}/heartbeat", {"attempt": 1}, format="json"), 403)
    # a worker key cannot use the user's file endpoints
    worker, _ = key_client()
    assert worker.get(f"/api/jobs/{job['id']}/files").status_code == 403


@pytest.mark.django_db
def test_bad_input_is_400_in_the_envelope_and_changes_nothing(renderer):
    job = render_job(renderer)
    worker, _ = key_client()
    for body in ({"max": 0}, {"max": "x"}, {"kinds": "video_render"}, {"lease_seconds": -1}, []):
        assert_error(worker.post("/api/worker/claim", body, format="json"), 400)
    assert Job.objects.get(pk=job["id"]).status == "queued"
    claim(worker)
    for body in (
        {},
        {"attempt": 0},
        {"attempt": 1, "status": "queued"},
        {"attempt": 1, "status": "completed", "successful_count": 5},
        {"attempt": 1, "status": "completed", "vault_items": [{"kind": "x"}]},
    ):
        assert_error(worker.post(f"/api/worker/jobs/{job['id']}/report", body, format="json"), 400)
    bad = SimpleUploadedFile("final.exe", b"MZ\x90\x00")
    r = worker.post(
        f"/api/worker/jobs/{job['id']}/files",
        {"attempt": 1, "role": "output", "file": bad},
        format="multipart",
    )
    assert_error(r, 400)
    r = worker.post(
        f"/api/worker/jobs/{job['id']}/files",
        {"attempt": 1, "role": "input", "file": SimpleUploadedFile("a.mp4", MP4)},
        format="multipart",
    )
    assert_error(r, 400)
    assert Job.objects.get(pk=job["id"]).status == "preparing"
    assert Job.objects.get(pk=job["id"]).files.count() == 1


@pytest.mark.django_db
def test_a_forged_or_expired_download_url_is_404(renderer, settings):
    render_job(renderer)
    worker, _ = key_client()
    (claimed,) = claim(worker)
    url = claimed["input_files"][0]["download_url"]
    assert_error(APIClient().get(url[:-2] + "xx"), 404)
    settings.WORKER_DOWNLOAD_URL_SECONDS = -1
    assert_error(APIClient().get(url), 404)


@pytest.mark.django_db
def test_vault_items_in_reports_are_stored_once_also_after_the_job_finished(renderer):
    job = render_job(renderer)
    worker, _ = key_client()
    claim(worker)
    items = [{"kind": "user_account", "external_id": "u1", "name": "Ann", "data": {"email": "a@x.io"}}]
    url = f"/api/worker/jobs/{job['id']}/report"
    assert (
        worker.post(
            url, {"attempt": 1, "status": "processing", "vault_items": items}, format="json"
        ).status_code
        == 200
    )
    assert (
        worker.post(
            url, {"attempt": 1, "status": "completed", "vault_items": items}, format="json"
        ).status_code
        == 200
    )
    assert Artifact.objects.filter(job_id=job["id"]).count() == 1
    vault = client_for(renderer).get("/api/vault").json()
    assert vault["count"] == 1 and vault["results"][0]["type"] == "user_account"


@pytest.mark.django_db(transaction=True)
def test_n_threads_claiming_take_each_job_exactly_once(drop_other_connections):
    user = UserFactory()
    give_credits(user, 50)
    jobs = {render_job(user, clips=0)["id"] for _ in range(12)}
    worker, _ = key_client()
    results = run_concurrently(6, lambda i: [j["id"] for j in claim(worker, max=3)])
    claimed = [job_id for batch in results for job_id in batch]
    assert sorted(claimed) == sorted(set(claimed))
    assert set(claimed) <= jobs and len(claimed) == 12
    assert Job.objects.filter(pk__in=jobs, status="preparing", attempts=1).count() == 12
    assert CreditTransaction.objects.filter(user=user, type="usage").count() == 12


@pytest.mark.django_db
def test_a_job_waiting_for_its_inputs_is_not_claimed_until_they_are_uploaded(renderer):
    client = client_for(renderer)
    job = client.post(
        "/api/jobs", {"kind": "video_render", "params": {"input_count": 2}}, format="json"
    ).json()
    worker, _ = key_client()
    for i in range(2):
        assert claim(worker) == []
        upload = SimpleUploadedFile(f"clip{i}.mp4", MP4)
        client.post(f"/api/jobs/{job['id']}/files", {"file": upload, "role": "input"}, format="multipart")
    (claimed,) = claim(worker)
    assert len(claimed["input_files"]) == 2
