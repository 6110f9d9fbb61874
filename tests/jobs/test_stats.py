import pytest

from accounts.services import api_key_create
from credits.models import CreditTransaction
from credits.selectors import balance_get
from jobs.models import Artifact, Job, JobDailyStat
from tests.conftest import assert_error
from tests.jobs.conftest import give_credits
from tests.jobs.factories import JobFactory

pytestmark = pytest.mark.django_db

FIELDS = {"job_id", "requested_count", "successful_count", "failed_count", "status"}


def patch(client, **body):
    return client.patch("/api/stats", body, format="json")


@pytest.fixture
def service_client(api_client):
    _, key = api_key_create(name="batch-worker", scopes=["jobs:write"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return api_client


def test_patch_creates_the_job_and_answers_exactly_five_fields(auth_client, funded_user):
    response = patch(
        auth_client, job_id="b-1", requested_count=10, successful_count=0, failed_count=0, status="processing"
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "job_id": "b-1",
        "requested_count": 10,
        "successful_count": 0,
        "failed_count": 0,
        "status": "processing",
    }
    job = Job.objects.get(external_id="b-1")
    assert job.kind.code == "account_batch" and job.user == funded_user and job.credits_charged == 10
    assert balance_get(user=funded_user) == 90


def test_patch_pending_does_not_charge_until_processing(auth_client, funded_user):
    assert patch(auth_client, job_id="b-2", requested_count=5, status="pending").json()["status"] == "pending"
    assert balance_get(user=funded_user) == 100
    patch(auth_client, job_id="b-2", requested_count=5, successful_count=2, status="processing")
    assert balance_get(user=funded_user) == 95


def test_patch_update_then_repeat_charges_and_counts_once(auth_client, funded_user):
    for _ in range(2):
        patch(auth_client, job_id="b-3", requested_count=4, successful_count=1, status="processing")
    for _ in range(2):
        response = patch(
            auth_client,
            job_id="b-3",
            requested_count=4,
            successful_count=3,
            failed_count=1,
            status="completed",
        )
    assert response.json() == {
        "job_id": "b-3",
        "requested_count": 4,
        "successful_count": 3,
        "failed_count": 1,
        "status": "completed",
    }
    job = Job.objects.get(external_id="b-3")
    assert (job.credits_charged, job.credits_refunded) == (4, 1)
    assert balance_get(user=funded_user) == 97
    assert CreditTransaction.objects.filter(job_id=job.pk, type="usage").count() == 1
    assert CreditTransaction.objects.filter(job_id=job.pk, type="refund").count() == 1


def test_patch_straight_to_completed_passes_through_queued_and_charges(auth_client, funded_user):
    patch(auth_client, job_id="b-4", requested_count=2, successful_count=2, status="completed")
    job = Job.objects.get(external_id="b-4")
    assert job.status == "completed" and job.queued_at is not None and job.credits_charged == 2


def test_patch_out_of_order_completed_then_processing_stays_completed(auth_client, funded_user):
    patch(auth_client, job_id="b-5", requested_count=3, successful_count=3, status="completed")
    response = patch(auth_client, job_id="b-5", requested_count=3, successful_count=1, status="processing")
    assert response.status_code == 200
    assert response.json()["status"] == "completed" and response.json()["successful_count"] == 3
    failed = patch(auth_client, job_id="b-5", requested_count=3, failed_count=3, status="failed")
    assert failed.json()["status"] == "completed"
    assert balance_get(user=funded_user) == 97


def test_patch_failed_refunds_what_was_charged(auth_client, funded_user):
    patch(auth_client, job_id="b-6", requested_count=6, status="processing")
    patch(auth_client, job_id="b-6", requested_count=6, failed_count=6, status="failed")
    assert balance_get(user=funded_user) == 100
    assert Job.objects.get(external_id="b-6").status == "failed"


@pytest.mark.parametrize(
    "body",
    [
        {"job_id": "x", "requested_count": -1, "status": "pending"},
        {"job_id": "x", "requested_count": 2, "successful_count": -1, "status": "pending"},
        {"job_id": "x", "requested_count": 2, "successful_count": 2, "failed_count": 1, "status": "pending"},
        {"job_id": "x", "requested_count": 2, "status": "exploded"},
        {"job_id": "x", "requested_count": "two", "status": "pending"},
        {"requested_count": 2, "status": "pending"},
        {"job_id": "x" * 500, "requested_count": 2, "status": "pending"},
        {"job_id": "x", "requested_count": 2, "status": "pending", "kind": "nope"},
    ],
)
def test_patch_bad_counts_or_fields_are_400_and_change_nothing(auth_client, funded_user, body):
    assert_error(auth_client.patch("/api/stats", body, format="json"), 400)
    assert Job.objects.count() == 0


def test_patch_non_object_body_is_400(auth_client):
    assert_error(auth_client.patch("/api/stats", [1, 2], format="json"), 400)
    assert_error(auth_client.generic("PATCH", "/api/stats", b"{", content_type="application/json"), 400)


def test_patch_insufficient_credits_is_402_and_nothing_persists(auth_client, user):
    give_credits(user, 1)
    assert_error(
        patch(auth_client, job_id="b-7", requested_count=5, status="processing"), 402, "insufficient_credits"
    )
    assert not Job.objects.filter(external_id="b-7").exists()


def test_patch_with_another_users_job_id_makes_the_callers_own_job_and_leaves_theirs_alone(
    auth_client, other_client, funded_user, other_user
):
    # Contract change (issue 9 point 5): external ids are unique per user, so another user's id
    # is neither a 404 nor a 409 (an existence oracle): it simply names the caller's own job.
    give_credits(other_user, 10)
    patch(other_client, job_id="theirs", requested_count=1, status="processing")
    response = patch(auth_client, job_id="theirs", requested_count=1, status="completed")
    assert response.status_code == 200, response.content
    assert Job.objects.get(external_id="theirs", user=other_user).status == "processing"
    assert Job.objects.get(external_id="theirs", user=funded_user).status == "completed"
    assert balance_get(user=other_user) == 9 and balance_get(user=funded_user) == 99


def test_patch_count_change_after_charge_is_409(auth_client, funded_user):
    patch(auth_client, job_id="b-8", requested_count=3, status="processing")
    assert_error(patch(auth_client, job_id="b-8", requested_count=30, status="processing"), 409)
    assert balance_get(user=funded_user) == 97


def test_patch_anonymous_is_401(api_client):
    assert_error(patch(api_client, job_id="a", requested_count=1, status="pending"), 401)


def test_patch_with_service_key_needs_user_id(service_client, funded_user):
    assert_error(
        patch(service_client, job_id="s-1", requested_count=1, status="processing"), 400, "validation_error"
    )
    response = patch(
        service_client, job_id="s-1", requested_count=1, status="processing", user_id=str(funded_user.pk)
    )
    assert response.status_code == 200
    assert Job.objects.get(external_id="s-1").user == funded_user


def test_patch_with_a_key_lacking_the_scope_is_403(api_client, funded_user):
    _, key = api_key_create(name="reader", scopes=["jobs:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert_error(
        patch(api_client, job_id="s-2", requested_count=1, status="processing", user_id=str(funded_user.pk)),
        403,
    )


def _job_on(user, day, **kwargs):
    job = JobFactory(user=user, **kwargs)
    Job.objects.filter(pk=job.pk).update(created_at=f"{day}T12:00:00Z")
    return job


def test_stats_over_a_range_count_only_jobs_created_in_it(auth_client, user, other_user):
    _job_on(
        user,
        "2026-03-01",
        requested_count=10,
        successful_count=7,
        failed_count=3,
        credits_charged=10,
        credits_refunded=3,
    )
    inside = _job_on(user, "2026-03-05", requested_count=5, successful_count=5, credits_charged=5)
    Artifact.objects.create(job=inside, user=user, type="account", name="a@x")
    _job_on(user, "2026-04-01", requested_count=99)
    _job_on(other_user, "2026-03-02", requested_count=50)
    body = auth_client.get("/api/stats?from=2026-03-01&to=2026-03-31").json()
    assert body["jobs"] == 2 and body["requested"] == 15 and body["successful"] == 12
    assert body["failed"] == 3 and body["credits_spent"] == 12 and body["vault_items"] == 1
    assert body["success_rate"] == 80.0
    assert auth_client.get("/api/stats?from=2026-03-02&to=2026-03-04").json()["jobs"] == 0


def test_stats_rollup_matches_a_recount_from_the_jobs_table(user, funded_user):
    from django.db import connection

    from jobs import services

    services.job_create(user=funded_user, kind_code="account_batch", requested_count=3)
    job = services.job_create(user=funded_user, kind_code="account_batch", requested_count=2)
    services.job_cancel(job=job)
    row = JobDailyStat.objects.get(user=funded_user)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), sum(requested_count), sum(credits_charged - credits_refunded) "
            "FROM jobs_job WHERE user_id = %s",
            [funded_user.pk],
        )
        assert cursor.fetchone() == (row.jobs, row.requested, row.credits_spent) == (2, 5, 3)


def test_daily_series_has_one_row_per_day(auth_client, user):
    _job_on(user, "2026-05-02", requested_count=4)
    _job_on(user, "2026-05-02", requested_count=1)
    _job_on(user, "2026-05-04", requested_count=2)
    rows = auth_client.get("/api/stats/daily?from=2026-05-01&to=2026-05-05").json()
    assert [r["date"] for r in rows] == ["2026-05-01", "2026-05-02", "2026-05-03", "2026-05-04", "2026-05-05"]
    assert [r["jobs"] for r in rows] == [0, 2, 0, 1, 0]
    assert rows[1]["requested"] == 5


@pytest.mark.parametrize(
    "query",
    ["from=2026-05-10&to=2026-05-01", "from=monday", "to=2026-02-30", "from=2000-01-01&to=2026-01-01"],
)
def test_stats_bad_ranges_are_400(auth_client, query):
    assert_error(auth_client.get(f"/api/stats/daily?{query}"), 400)


def test_stats_anonymous_is_401(api_client):
    assert_error(api_client.get("/api/stats"), 401)
    assert_error(api_client.get("/api/stats/daily"), 401)


def test_stats_query_count_is_constant(auth_client, user, django_assert_max_num_queries):
    for day in range(1, 20):
        _job_on(user, f"2026-06-{day:02d}")
    with django_assert_max_num_queries(3):
        auth_client.get("/api/stats?from=2026-06-01&to=2026-06-30")
    with django_assert_max_num_queries(3):
        assert len(auth_client.get("/api/stats/daily?from=2026-06-01&to=2026-06-30").json()) == 30


def test_rollup_rebuild_reproduces_what_the_triggers_kept(funded_user, other_user):
    from jobs import services

    services.job_create(user=funded_user, kind_code="account_batch", requested_count=3)
    job = services.job_create(user=funded_user, kind_code="account_batch", requested_count=2)
    Artifact.objects.create(job=job, user=funded_user, type="account")
    services.job_cancel(job=job)
    fields = ("user_id", "date", "jobs", "requested", "successful", "failed", "credits_spent", "vault_items")
    before = sorted(JobDailyStat.objects.values_list(*fields))
    JobDailyStat.objects.all().delete()
    services.job_daily_stats_rebuild()
    assert sorted(JobDailyStat.objects.values_list(*fields)) == before
    assert before[0][2:] == (2, 5, 0, 0, 3, 1)


def test_patch_cannot_create_an_engine_kind_job_bypassing_the_model_limit(auth_client, user):
    assert_error(
        patch(auth_client, job_id="m-1", requested_count=1, status="completed", kind="model_import"),
        400,
        "validation_error",
    )
    assert not Job.objects.exists()


def test_ended_counts_are_kept_on_the_day_each_job_ended_and_read_without_the_jobs_table(auth_client, user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from jobs import services

    # created in March, ended on two April days; one still running; one ended in May
    for status, ended in (
        ("completed", "2026-04-02T23:59:00Z"),
        ("completed", "2026-04-03T00:01:00Z"),
        ("failed", "2026-04-03T10:00:00Z"),
        ("processing", None),
        ("failed", "2026-05-01T10:00:00Z"),
    ):
        _job_on(user, "2026-03-01", status=status, completed_at=ended)
    moved = _job_on(user, "2026-03-02", status="completed", completed_at="2026-05-02T10:00:00Z")
    Job.objects.filter(pk=moved.pk).update(completed_at="2026-04-05T10:00:00Z")  # its day moves too

    with CaptureQueriesContext(connection) as queries:
        april = auth_client.get("/api/stats?from=2026-04-01&to=2026-04-30").json()
    assert (april["completed_jobs"], april["failed_jobs"], april["jobs"]) == (3, 1, 0)
    assert auth_client.get("/api/stats?from=2026-04-03&to=2026-05-31").json()["failed_jobs"] == 2
    assert not [q for q in queries.captured_queries if Job._meta.db_table + '"' in q["sql"]]
    fields = ("user_id", "date", "jobs", "ended_completed", "ended_failed")
    nonzero = JobDailyStat.objects.exclude(jobs=0, ended_completed=0, ended_failed=0)
    kept = sorted(nonzero.values_list(*fields))
    JobDailyStat.objects.all().delete()
    services.job_daily_stats_rebuild()
    assert sorted(nonzero.values_list(*fields)) == kept
    assert [(row[1].isoformat(), *row[2:]) for row in kept] == [
        ("2026-03-01", 5, 0, 0),
        ("2026-03-02", 1, 0, 0),
        ("2026-04-02", 0, 1, 0),
        ("2026-04-03", 0, 1, 1),
        ("2026-04-05", 0, 1, 0),
        ("2026-05-01", 0, 0, 1),
    ]


def _created_job(client, **extra) -> dict:
    body = {"kind": "account_batch", "requested_count": 3, **extra}
    response = client.post("/api/jobs", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_patch_with_the_uuid_of_the_callers_job_updates_that_job_and_charges_once(auth_client, funded_user):
    # given a job created through POST /api/jobs (queued and charged 3, no external id)
    created = _created_job(auth_client)
    assert balance_get(user=funded_user) == 97
    # when the client reports on it with the id it was given
    response = patch(
        auth_client,
        job_id=created["id"],
        requested_count=3,
        successful_count=3,
        failed_count=0,
        status="completed",
    )
    # then that job completes; no second job, no second charge
    assert response.status_code == 200, response.content
    assert response.json() == {
        "job_id": created["id"],
        "requested_count": 3,
        "successful_count": 3,
        "failed_count": 0,
        "status": "completed",
    }
    assert Job.objects.filter(user=funded_user).count() == 1
    job = Job.objects.get(pk=created["id"])
    assert (job.status, job.credits_charged, job.external_id) == ("completed", 3, created["external_id"])
    assert balance_get(user=funded_user) == 97


def test_patch_by_external_id_and_by_uuid_reach_the_same_job(auth_client, funded_user):
    created = _created_job(auth_client, external_id="ext-both")
    patch(auth_client, job_id="ext-both", requested_count=3, successful_count=1, status="processing")
    patch(auth_client, job_id=created["id"], requested_count=3, successful_count=2, status="processing")
    response = patch(
        auth_client,
        job_id="ext-both",
        requested_count=3,
        successful_count=2,
        failed_count=1,
        status="completed",
    )
    assert response.json()["status"] == "completed"
    assert Job.objects.filter(user=funded_user).count() == 1
    job = Job.objects.get(pk=created["id"])
    assert (job.successful_count, job.failed_count, job.credits_charged, job.credits_refunded) == (2, 1, 3, 1)
    assert CreditTransaction.objects.filter(job_id=job.pk, type="usage").count() == 1
    assert balance_get(user=funded_user) == 98


def test_patch_with_another_users_job_uuid_never_touches_that_job(auth_client, funded_user, other_user):
    give_credits(other_user, 10)
    theirs = JobFactory(user=other_user, status="queued")
    before = (theirs.status, theirs.successful_count)
    response = patch(
        auth_client, job_id=str(theirs.pk), requested_count=1, successful_count=1, status="completed"
    )
    # the UUID is not one of the caller's jobs: it is an external id of a new job of the caller
    assert response.status_code == 200, response.content
    theirs.refresh_from_db()
    assert (theirs.status, theirs.successful_count) == before
    mine = Job.objects.get(user=funded_user)
    assert mine.external_id == str(theirs.pk) and mine.status == "completed"
