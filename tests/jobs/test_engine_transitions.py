"""The engine moves job statuses only as the transition table allows, and authorises exactly
the jobs it moves: no status write is left open after one of its statements, even inside a
caller's transaction, and the guard knows no wildcard (jobs migration 0012)."""

import threading

import pytest
from django.db import DatabaseError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from credits.selectors import balance_get
from jobs import engine, services
from jobs.models import Job
from jobs.signals import COMPLETION_WITHOUT_CREDITS, completion_moves_credits
from jobs.states import RUNNING, TRANSITIONS, JobStatus, sources_of
from tests.factories import UserFactory
from tests.jobs.conftest import give_credits

S = JobStatus
pytestmark = pytest.mark.django_db


def authorised() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(current_setting('jobs.transition', true), '')")
        return cursor.fetchone()[0]


def raw_status_write_refused(job_id, status: str) -> bool:
    """Whether the database refuses a raw status write of this job (in a savepoint)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"UPDATE {Job._meta.db_table} SET status = %s WHERE id = %s", [status, job_id])
    except DatabaseError as exc:
        assert "job_transition" in str(exc)
        return True
    return False


def queryset_status_write_refused(job_id, status: str) -> bool:
    try:
        with transaction.atomic():
            Job.objects.filter(pk=job_id).update(status=status)
    except DatabaseError:
        return True
    return False


@pytest.fixture
def engine_jobs(user):
    give_credits(user, 10)
    return [services.job_create(user=user, kind_code="test_noop") for _ in range(3)]


def test_a_second_status_write_after_job_transition_in_the_same_transaction_is_refused(engine_jobs):
    job = engine_jobs[0]
    with transaction.atomic():
        services.job_transition(job=job, to=S.PROCESSING)
        assert authorised() == ""
        assert raw_status_write_refused(job.pk, S.COMPLETED)
        assert queryset_status_write_refused(job.pk, S.COMPLETED)
    assert Job.objects.get(pk=job.pk).status == S.PROCESSING


def test_after_an_engine_claim_inside_a_transaction_no_status_write_is_left_authorised(engine_jobs):
    assert connection.in_atomic_block  # the test's transaction: the claim's setting outlives it
    ((claimed_id, attempt),) = engine.jobs_claim(limit=1)

    assert authorised() == ""
    assert Job.objects.get(pk=claimed_id).status == S.PREPARING
    assert raw_status_write_refused(claimed_id, S.QUEUED)
    assert queryset_status_write_refused(claimed_id, S.FAILED)
    unclaimed = next(j for j in engine_jobs if j.pk != claimed_id)
    assert raw_status_write_refused(unclaimed.pk, S.PREPARING)
    assert Job.objects.get(pk=unclaimed.pk).status == S.QUEUED


def test_after_an_engine_start_inside_a_transaction_no_status_write_is_left_authorised(engine_jobs):
    ((job_id, attempt),) = engine.jobs_claim(limit=1)

    assert engine._job_start(job_id, attempt).status == S.PROCESSING

    assert authorised() == ""
    assert raw_status_write_refused(job_id, S.COMPLETED)
    assert queryset_status_write_refused(job_id, S.COMPLETED)
    assert Job.objects.get(pk=job_id).status == S.PROCESSING


def test_a_start_that_lost_its_lease_authorises_nothing(engine_jobs):
    ((job_id, attempt),) = engine.jobs_claim(limit=1)

    assert engine._job_start(job_id, attempt + 1) is None

    assert authorised() == ""
    assert raw_status_write_refused(job_id, S.PROCESSING)


def test_after_the_one_statement_completion_inside_a_transaction_nothing_is_left_authorised(engine_jobs):
    ((job_id, attempt),) = engine.jobs_claim(limit=1)
    job = engine._job_start(job_id, attempt)

    with CaptureQueriesContext(connection) as queries:
        assert engine.job_attempt_succeeded(job_id=job_id, attempt=attempt, outcome={}, ctx=None, job=job)

    # the one-statement path ran
    assert [q for q in queries.captured_queries if "SET status = 'completed'" in q["sql"]]
    assert authorised() == ""
    assert Job.objects.get(pk=job_id).status == S.COMPLETED
    assert raw_status_write_refused(job_id, S.FAILED)


def test_after_the_batched_completion_inside_a_transaction_nothing_is_left_authorised(engine_jobs):
    claimed = engine.jobs_claim(limit=3)
    completions = engine.BatchCompletions()
    for job_id, attempt in claimed:
        job = engine._job_start(job_id, attempt)
        completions.add(job=job, attempt=attempt, outcome={}, fields=engine._completion_fields(job, {}))

    with CaptureQueriesContext(connection) as queries:
        completions.flush()

    # one statement completed the three jobs, each authorised once by it
    assert [q for q in queries.captured_queries if "SET status = 'completed'" in q["sql"]] == [
        q for q in queries.captured_queries if "unnest(" in q["sql"]
    ]
    assert len([q for q in queries.captured_queries if "unnest(" in q["sql"]]) == 1
    assert authorised() == ""
    assert set(Job.objects.filter(pk__in=[j for j, _ in claimed]).values_list("status", flat=True)) == {
        S.COMPLETED
    }
    for job_id, _ in claimed:
        assert raw_status_write_refused(job_id, S.FAILED)


def test_the_guard_takes_no_wildcard(engine_jobs):
    job = engine_jobs[0]
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('jobs.transition', '*', true)")
    assert raw_status_write_refused(job.pk, S.CANCELLED)
    assert queryset_status_write_refused(job.pk, S.CANCELLED)
    assert Job.objects.get(pk=job.pk).status == S.QUEUED


def test_an_authorisation_lets_each_listed_job_through_once(engine_jobs):
    first, second, third = engine_jobs
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('jobs.transition', %s, true)", [f"{first.pk},{second.pk}"])

    assert not raw_status_write_refused(first.pk, S.CANCELLED)
    assert raw_status_write_refused(first.pk, S.FAILED)  # consumed by its one write
    assert raw_status_write_refused(third.pk, S.CANCELLED)  # never listed
    assert authorised() == str(second.pk)


def test_the_engines_statements_take_their_source_statuses_from_the_transition_table():
    def source_list(sql: str) -> set[str]:
        listed = sql.split("WHERE status IN (", 1)[1].split(")", 1)[0]
        return {s.strip().strip("'") for s in listed.split(",")}

    assert source_list(engine.CLAIM_SQL) == set(sources_of(S.PREPARING)) == {S.QUEUED, S.RETRYING}
    assert source_list(engine.START_SQL) == set(sources_of(S.PROCESSING) & RUNNING) == {S.PREPARING}
    assert source_list(engine.COMPLETE_SQL) == set(sources_of(S.COMPLETED) & RUNNING)
    assert source_list(engine.COMPLETE_BATCH_SQL) == set(sources_of(S.COMPLETED) & RUNNING)
    for sql, target in ((engine.CLAIM_SQL, S.PREPARING), (engine.START_SQL, S.PROCESSING)):
        assert all(target in TRANSITIONS[source] for source in source_list(sql))
    # a move the table forbids cannot be generated
    with pytest.raises(ValueError):
        engine._move_sql(S.PREPARING, among=RUNNING, where="TRUE", lock="", sets="", returning="j.id")


def test_the_one_statement_completion_and_the_credit_signal_read_the_same_rule():
    # the completion's WHERE is generated from the rule the signal follows
    for name in COMPLETION_WITHOUT_CREDITS:
        for sql in (engine.COMPLETE_SQL, engine.COMPLETE_BATCH_SQL):
            assert f'"{Job._meta.get_field(name).column}" = %(without_credits_{name})s' in sql
    assert not completion_moves_credits(Job(charged=True, failed_count=0))
    assert completion_moves_credits(Job(charged=True, failed_count=1))
    assert completion_moves_credits(Job(charged=False, failed_count=0))


def test_an_engine_completion_with_failed_units_takes_the_locked_path_and_refunds_them(user):
    give_credits(user, 10)
    services.job_create(user=user, kind_code="test_script", requested_count=3)
    ((job_id, attempt),) = engine.jobs_claim(limit=1)
    job = engine._job_start(job_id, attempt)

    with CaptureQueriesContext(connection) as queries:
        assert engine.job_attempt_succeeded(
            job_id=job_id, attempt=attempt, outcome={"failed_count": 1}, ctx=None, job=job
        )

    assert not [q for q in queries.captured_queries if "SET status = 'completed'" in q["sql"]]
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.successful_count, job.failed_count) == (S.COMPLETED, 2, 1)
    assert (job.credits_charged, job.credits_refunded) == (3, 1)
    assert balance_get(user=user) == 8


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_take_disjoint_jobs_and_each_is_authorised_once():
    # given: 40 due jobs and four workers claiming at once, each in its own connection
    user = UserFactory()
    give_credits(user, 40)
    for _ in range(40):
        services.job_create(user=user, kind_code="test_noop")
    barrier = threading.Barrier(4)
    claimed: list[list] = [[] for _ in range(4)]
    errors: list[BaseException] = []

    def claimer(index: int) -> None:
        try:
            barrier.wait()
            while batch := engine.jobs_claim(limit=3):
                claimed[index].extend(job_id for job_id, _ in batch)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: every job claimed exactly once, attempt 1, and no worker was refused by the guard
    assert errors == []
    ids = [job_id for batch in claimed for job_id in batch]
    assert len(ids) == len(set(ids)) == 40
    assert set(Job.objects.values_list("status", "attempts")) == {(S.PREPARING, 1)}
