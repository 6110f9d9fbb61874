"""Vault items through PATCH /api/stats: stored once per (job, kind, external_id), also after the
job finished, counted by GET /api/vault and GET /api/stats; a batch that keeps reporting is
never timed out."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import engine
from jobs.models import Artifact, Job
from tests.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db

CENTERS = [
    {"kind": "business_center", "external_id": "bc-1", "name": "Center 1", "data": {"id": "1"}},
    {"kind": "user_account", "external_id": "ua-1", "name": "user1@example.com"},
]


def patch(client, **body):
    return client.patch("/api/stats", {"job_id": "batch-1", "requested_count": 2, **body}, format="json")


def test_vault_items_are_stored_once_and_counted_also_when_they_arrive_after_the_job_finished(funded_user):
    client = client_for(funded_user)
    # given a batch reporting its items while it runs, again (a retry), then finishing
    assert patch(client, status="processing", successful_count=1, vault_items=CENTERS[:1]).status_code == 200
    assert patch(client, status="processing", successful_count=1, vault_items=CENTERS[:1]).status_code == 200
    assert patch(client, status="completed", successful_count=2).status_code == 200
    # when the last item arrives after the job finished
    late = patch(client, status="completed", successful_count=2, vault_items=CENTERS)
    # then it is stored, the first one not twice, the response still exactly the five fields
    assert late.status_code == 200
    assert set(late.json()) == {"job_id", "requested_count", "successful_count", "failed_count", "status"}
    job = Job.objects.get(user=funded_user, external_id="batch-1")
    assert job.status == "completed"
    assert sorted(Artifact.objects.filter(job=job).values_list("type", "external_id")) == [
        ("business_center", "bc-1"),
        ("user_account", "ua-1"),
    ]
    assert client.get("/api/vault").json()["count"] == 2
    assert client.get("/api/stats").json()["vault_items"] == 2


def test_bad_vault_items_are_400_and_store_nothing(funded_user):
    client = client_for(funded_user)
    for items in (
        [{"kind": "planet", "external_id": "x"}],
        [{"kind": "file"}],
        "x",
        [{"kind": "file", "external_id": "a" * 129}],
    ):
        assert_error(patch(client, status="processing", vault_items=items), 400)
    assert not Artifact.objects.exists() and not Job.objects.filter(user=funded_user).exists()


def test_another_users_vault_is_not_listed(funded_user, other_user):
    patch(client_for(funded_user), status="processing", vault_items=CENTERS)
    assert client_for(other_user).get("/api/vault").json()["count"] == 0
    assert client_for(other_user).get("/api/stats").json()["vault_items"] == 0


def test_a_client_batch_that_keeps_reporting_is_never_timed_out(funded_user):
    client = client_for(funded_user)
    start = timezone.now()
    assert patch(client, status="processing").status_code == 200
    job = Job.objects.get(user=funded_user, external_id="batch-1")
    # the kind's timeout is an hour; the batch reports every 40 minutes for three hours
    for step in range(1, 6):
        at = start + timedelta(minutes=40 * step)
        Job.objects.filter(pk=job.pk).update(heartbeat_at=at - timedelta(minutes=40))
        assert engine.jobs_rescue_stale(now=at)["silent_failed"] == 0
        item = {"kind": "user_account", "external_id": f"u{step}"}
        assert patch(client, status="processing", vault_items=[item]).status_code == 200
    assert Job.objects.get(pk=job.pk).status == "processing"
    # and once it goes silent past the timeout, it is failed
    later = timezone.now() + timedelta(hours=2)
    assert engine.jobs_rescue_stale(now=later)["silent_failed"] == 1
