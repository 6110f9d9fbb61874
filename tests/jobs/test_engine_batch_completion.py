"""The credit-neutral completions of a claimed batch are written by one statement at its end.

Every test drains a batch of 8 jobs claimed at once (one `jobs_drain`, or a real Celery worker)
on a real database, and checks each job against what the per-job completion writes: status,
counts, result, credits, the finish email (exactly once), and that a job is completed only by
the attempt that still holds its lease.
"""

import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from credits.selectors import balance_get
from jobs import engine, notifications, services
from jobs.models import Job
from jobs.states import JobStatus
from tests.factories import UserFactory
from tests.jobs.conftest import give_credits
from tests.jobs.test_engine import wait_for, worker

S = JobStatus
BATCH_MARKER = "AS d (id, attempt, successful, result, finished_at)"  # COMPLETE_BATCH_SQL
ALONE_MARKER = "completed_at = '"  # COMPLETE_SQL, the per-job one-statement completion (as logged)


@pytest.fixture
def batch_settings(settings):
    settings.JOBS_CLAIM_BATCH = 8
    settings.JOBS_CLAIM_WINDOW_SECONDS = 60  # the whole batch is acknowledged at its end
    settings.JOBS_RETRY_BASE_SECONDS = 3600
    settings.JOBS_RETRY_MAX_SECONDS = 3600
    settings.JOBS_DRAIN_SECONDS = 60
    return settings


@pytest.fixture
def owner(transactional_db):
    user = UserFactory()
    give_credits(user, 100)
    return user


@pytest.fixture
def emails(monkeypatch):
    """The job ids whose finish email was queued, one entry per email, with the status announced."""
    queued: list[tuple[str, str]] = []

    def enqueue(*, template, to, context):
        queued.append((context["job_id"], context["status"]))

    monkeypatch.setattr(notifications, "email_send_after_commit", enqueue)
    return queued


def queue(owner, params_list: list[dict], *, requested_count: int = 2) -> list[Job]:
    """Jobs committed together, so that one claim takes them all (in this order)."""
    with transaction.atomic():
        return [
            services.job_create(
                user=owner, kind_code="test_script", requested_count=requested_count, params=params
            )
            for params in params_list
        ]


def outcomes(jobs) -> list[tuple]:
    """What the completion wrote, in the order the jobs were created."""
    rows = {
        row[0]: row[1:]
        for row in Job.objects.filter(pk__in=[j.pk for j in jobs]).values_list(
            "pk",
            "status",
            "attempts",
            "progress",
            "successful_count",
            "failed_count",
            "result",
            "error",
            "credits_charged",
            "credits_refunded",
        )
    }
    return [rows[j.pk] for j in jobs]


def statements(queries, marker: str) -> int:
    return sum(marker in q["sql"] for q in queries.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_completed_by_one_statement_each_job_at_its_own_finish_time_and_announced_once(
    owner, batch_settings, emails
):
    # given: 8 jobs, the 3rd and 6th with a failed unit (their completion refunds it: not batched)
    params = [{"failed_count": 1} if i in (2, 5) else {} for i in range(8)]
    jobs = queue(owner, params)

    # when
    with CaptureQueriesContext(connection) as queries:
        assert engine.jobs_drain(budget_seconds=60) == 8

    # then: the 6 credit-neutral completions in one statement, none one by one
    assert statements(queries, BATCH_MARKER) == 1
    assert statements(queries, ALONE_MARKER) == 0
    neutral = (S.COMPLETED, 1, 100, 2, 0, {"attempt": 1}, "", 2, 0)
    refunding = (S.COMPLETED, 1, 100, 1, 1, {"attempt": 1}, "", 2, 1)
    assert outcomes(jobs) == [refunding if i in (2, 5) else neutral for i in range(8)]
    assert balance_get(user=owner) == 100 - 16 + 2
    # each job completed at its own finish time: before the next one of the batch started,
    # and before the statement that wrote it (updated_at)
    times = list(
        Job.objects.filter(pk__in=[j.pk for j in jobs])
        .order_by("started_at")
        .values_list("started_at", "completed_at", "updated_at")
    )
    for (started, completed, _), (next_started, _, _) in zip(times, times[1:], strict=False):
        assert started < completed <= next_started
    assert all(completed <= updated for _, completed, updated in times)
    assert sorted(emails) == sorted((str(j.pk), S.COMPLETED.value) for j in jobs)


@pytest.mark.django_db(transaction=True)
def test_with_no_claim_window_each_completion_is_written_before_the_next_job_starts(owner, batch_settings):
    # a completion waits for the next job only while the batch's pace fits the claim window
    batch_settings.JOBS_CLAIM_WINDOW_SECONDS = 0
    jobs = queue(owner, [{}] * 8)

    with CaptureQueriesContext(connection) as queries:
        assert engine.jobs_drain(budget_seconds=60) == 8

    assert statements(queries, BATCH_MARKER) == 8
    times = list(
        Job.objects.filter(pk__in=[j.pk for j in jobs])
        .order_by("started_at")
        .values_list("started_at", "updated_at")
    )
    for (_, written), (next_started, _) in zip(times, times[1:], strict=False):
        assert written <= next_started


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("runner", ["drain", "worker"])
def test_a_job_whose_lease_was_lost_mid_batch_is_not_completed_by_the_batch(
    owner, batch_settings, emails, runner, request
):
    if runner == "worker":  # the real broker, emptied before the jobs' wake-ups are sent
        request.getfixturevalue("redis_broker")
        request.getfixturevalue("drop_other_connections")
    # given: 8 jobs; while the 5th runs, the first one (finished, its completion waiting for the
    # end of the batch) is lost: the rescue found its heartbeat stale and another worker has
    # claimed and started it again (attempt 2, `processing`, as the batch's statement expects)
    with transaction.atomic():
        first = services.job_create(user=owner, kind_code="test_script", requested_count=2)
    rest = queue(owner, [{"steal": str(first.pk)} if i == 3 else {} for i in range(7)])

    # when
    if runner == "drain":
        assert engine.jobs_drain(budget_seconds=60) == 8
    else:
        settled = Job.objects.filter(pk__in=[j.pk for j in rest], status=S.COMPLETED)
        with worker():
            wait_for(lambda: settled.count() == 7, "the rest of the batch to complete")

    # then: the batch (and the per-job path after it) left the first job to its new attempt
    first.refresh_from_db()
    assert (first.status, first.attempts, first.successful_count) == (S.PROCESSING, 2, 0)
    assert first.progress < 100
    assert (first.credits_charged, first.credits_refunded, first.completed_at) == (2, 0, None)
    assert outcomes(rest) == [(S.COMPLETED, 1, 100, 2, 0, {"attempt": 1}, "", 2, 0)] * 7
    assert balance_get(user=owner) == 100 - 16
    # one email per completed job, none for the first
    assert sorted(emails) == sorted((str(j.pk), S.COMPLETED.value) for j in rest)


@pytest.fixture
def refuse_batched_completions():
    """The database refuses any single statement that completes more than one job (a real
    failure of the batched statement; each job's own completion still passes)."""
    table = Job._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE FUNCTION test_refuse_batch() RETURNS trigger AS $$
            BEGIN
                IF (SELECT count(*) FROM moved WHERE status = '{S.COMPLETED.value}') > 1 THEN
                    RAISE EXCEPTION 'injected batch failure';
                END IF;
                RETURN NULL;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_refuse_batch AFTER UPDATE ON {table}
                REFERENCING NEW TABLE AS moved
                FOR EACH STATEMENT EXECUTE FUNCTION test_refuse_batch();
            """
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER IF EXISTS test_refuse_batch ON {table}")
        cursor.execute("DROP FUNCTION IF EXISTS test_refuse_batch()")


@pytest.mark.django_db(transaction=True)
def test_a_failing_batch_statement_completes_every_job_one_by_one_with_the_same_outcome(
    owner, batch_settings, emails, refuse_batched_completions
):
    # given: the same batch twice (two credit-neutral jobs per failed-unit one): once batched,
    # once with the batched statement refused by the database
    params = [{"failed_count": 1} if i == 4 else {} for i in range(8)]
    batched = queue(owner, params)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {Job._meta.db_table} DISABLE TRIGGER test_refuse_batch")
    with CaptureQueriesContext(connection) as batched_queries:
        assert engine.jobs_drain(budget_seconds=60) == 8
    balance_after_batched = balance_get(user=owner)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {Job._meta.db_table} ENABLE TRIGGER test_refuse_batch")

    # when
    one_by_one = queue(owner, params)
    with CaptureQueriesContext(connection) as queries:
        assert engine.jobs_drain(budget_seconds=60) == 8

    # then: the statement was tried and refused, then the 7 credit-neutral jobs were completed
    # one statement each; counts, results, credits and emails are those of the batched run
    assert statements(batched_queries, BATCH_MARKER) == 1 and statements(batched_queries, ALONE_MARKER) == 0
    assert statements(queries, BATCH_MARKER) == 1 and statements(queries, ALONE_MARKER) == 7
    assert outcomes(one_by_one) == outcomes(batched)
    assert outcomes(batched)[4] == (S.COMPLETED, 1, 100, 1, 1, {"attempt": 1}, "", 2, 1)
    assert balance_after_batched - balance_get(user=owner) == 100 - balance_after_batched == 16 - 1
    assert sorted(emails) == sorted((str(j.pk), S.COMPLETED.value) for j in batched + one_by_one)


@pytest.mark.django_db(transaction=True)
def test_a_finished_job_stays_held_by_the_heartbeat_until_its_completion_is_written(owner, batch_settings):
    # given: the heartbeat beats fast; the 3rd job watches the first, finished before it started
    batch_settings.JOBS_HEARTBEAT_SECONDS = 0.05
    with transaction.atomic():
        first = services.job_create(user=owner, kind_code="test_script")
        second = services.job_create(user=owner, kind_code="test_script")
        watcher = services.job_create(user=owner, kind_code="test_script", params={"watch": str(first.pk)})

    assert engine.jobs_drain(budget_seconds=60) == 3

    # then: while the batch ran on, the first job was still `processing` (its completion
    # waiting) and its heartbeat kept being refreshed; then it was completed
    watcher.refresh_from_db()
    assert watcher.result["watched"] == {"status": S.PROCESSING.value, "heartbeat_refreshed": True}
    assert set(
        Job.objects.filter(pk__in=[first.pk, second.pk, watcher.pk]).values_list("status", flat=True)
    ) == {S.COMPLETED}


@pytest.mark.django_db(transaction=True)
def test_the_batch_statement_skips_a_job_row_held_by_another_transaction_instead_of_waiting(owner):
    # given: three finished jobs waiting for their batched completion; another transaction
    # (a cancel in flight, say) holds the second one's row
    queue(owner, [{}] * 3)
    completions = engine.BatchCompletions()
    claimed = engine.jobs_claim(limit=3)
    for job_id, attempt in claimed:
        job = engine._job_start(job_id, attempt)
        completions.add(job=job, attempt=attempt, outcome={}, fields=engine._completion_fields(job, {}))
    held_id = claimed[1][0]
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Job.objects.select_for_update().filter(pk=held_id).get()
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(timeout=30)
        # when: the batch's statement runs while the row is held
        completed = engine._complete_batch(completions.pending)
    finally:
        release.set()
        holder.join()

    # then: it completed the other two at once; the held one is the per-job path's
    assert completed == {claimed[0][0], claimed[2][0]}
    assert Job.objects.get(pk=held_id).status == S.PROCESSING
    completions.flush()
    assert set(Job.objects.filter(pk__in=[j for j, _ in claimed]).values_list("status", flat=True)) == {
        S.COMPLETED
    }
