"""The engine with a real Celery worker on each real broker (Redis, then RabbitMQ)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from config.celery import app as celery_app
from credits.models import CreditTransaction
from credits.selectors import balance_get
from jobs import engine, services
from jobs.models import Job
from tests.factories import UserFactory
from tests.jobs.conftest import give_credits

REPO = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 90


def wait_for(predicate, what: str, timeout: float = WAIT_SECONDS):
    """Poll until `predicate()` is truthy; fail (not time-assert) if it never becomes so."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def status_of(job) -> str:
    return Job.objects.values_list("status", flat=True).get(pk=job.pk)


@pytest.fixture
def engine_settings(settings):
    settings.JOBS_RETRY_BASE_SECONDS = 0.05
    settings.JOBS_RETRY_MAX_SECONDS = 0.5
    settings.JOBS_HEARTBEAT_SECONDS = 0.2
    settings.JOBS_STALE_AFTER_SECONDS = 1.5
    settings.JOBS_DRAIN_SECONDS = 60
    return settings


def worker():
    return start_worker(
        celery_app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=["jobs"],
        shutdown_timeout=30,
        loglevel="WARNING",
    )


def usage_rows(job) -> int:
    return CreditTransaction.objects.filter(job_id=job.pk, type="usage").count()


def refund_rows(job) -> int:
    return CreditTransaction.objects.filter(job_id=job.pk, type="refund").count()


@pytest.fixture
def payer(transactional_db):
    user = UserFactory()
    give_credits(user, 1000)
    return user


@pytest.mark.django_db(transaction=True)
def test_high_priority_job_submitted_behind_20_low_ones_starts_before_them(
    payer, broker, engine_settings, drop_other_connections
):
    # given: 20 low-priority jobs waiting, then one high-priority job (21 wake-ups in the broker, FIFO)
    low = [services.job_create(user=payer, kind_code="test_noop", priority=0) for _ in range(20)]
    high = services.job_create(user=payer, kind_code="test_noop", priority=10)
    # when: a worker starts consuming
    with worker():
        wait_for(lambda: Job.objects.filter(status="completed").count() == 21, "all 21 jobs to complete")
    # then
    high.refresh_from_db()
    first_low_start = min(Job.objects.filter(pk__in=[j.pk for j in low]).values_list("started_at", flat=True))
    assert high.started_at < first_low_start


@pytest.mark.django_db(transaction=True)
def test_processor_failing_twice_then_succeeding_completes_with_attempts_3_and_one_charge(
    payer, broker, engine_settings, drop_other_connections
):
    job = services.job_create(
        user=payer, kind_code="test_script", requested_count=2, params={"fail_until_attempt": 2}
    )
    with worker():
        wait_for(lambda: status_of(job) == "completed", "the job to complete")
    job.refresh_from_db()
    assert job.attempts == 3 and job.credits_charged == 2 and job.credits_refunded == 0
    assert job.result == {"attempt": 3} and job.progress == 100
    assert usage_rows(job) == 1 and refund_rows(job) == 0
    assert balance_get(user=payer) == 998


@pytest.mark.django_db(transaction=True)
def test_permanently_failing_job_ends_failed_with_exactly_one_refund(
    payer, broker, engine_settings, drop_other_connections
):
    job = services.job_create(
        user=payer, kind_code="test_script", requested_count=3, params={"fail_until_attempt": 99}
    )
    with worker():
        wait_for(lambda: status_of(job) == "failed", "the job to fail")
        engine.jobs_rescue_stale()  # a rescue run after the end changes nothing
    job.refresh_from_db()
    assert job.attempts == job.max_retries + 1 == 4
    assert "planned failure on attempt 4" in job.error
    assert usage_rows(job) == 1 and refund_rows(job) == 1
    assert (job.credits_charged, job.credits_refunded) == (3, 3)
    assert balance_get(user=payer) == 1000


@pytest.mark.django_db(transaction=True)
def test_worker_process_killed_mid_job_is_rescued_and_completes_with_one_charge(
    payer, broker, engine_settings, drop_other_connections
):
    # given: a real worker process running the job's first attempt, which blocks
    job = services.job_create(
        user=payer,
        kind_code="test_script",
        requested_count=5,
        params={"block_on_attempt": 1, "block_seconds": 600},
    )
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "TEST_BROKER_URL": broker.conf.broker_url,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "JOBS_EXTRA_PROCESSOR_MODULES": "tests.jobs.processors",
        "JOBS_HEARTBEAT_SECONDS": "0.2",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-P",
            "solo",
            "-Q",
            "jobs",
            "--loglevel",
            "WARNING",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: Job.objects.filter(pk=job.pk, status="processing", progress=10).exists(),
            "the worker process to start the job",
        )
        # when: the worker process dies without any chance to clean up
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # then: the rescue sees the stale heartbeat and puts the job back, without a second charge
    wait_for(lambda: engine.jobs_rescue_stale()["rescued"] == 1, "the rescue to pick the job up")
    job.refresh_from_db()
    assert job.status == "retrying" and "stale heartbeat" in job.error
    assert engine.jobs_rescue_stale()["rescued"] == 0
    with worker():
        wait_for(lambda: status_of(job) == "completed", "the rescued job to complete")
    job.refresh_from_db()
    assert job.attempts == 2 and job.result == {"attempt": 2}
    assert usage_rows(job) == 1 and refund_rows(job) == 0
    assert balance_get(user=payer) == 995


@pytest.mark.django_db
def test_attempt_running_past_its_kind_timeout_is_failed_over_and_its_late_result_refused(user):
    from datetime import timedelta

    from django.utils import timezone

    give_credits(user, 10)
    job = services.job_create(user=user, kind_code="test_script", params={})
    ((job_id, attempt),) = engine.jobs_claim(limit=1)
    with connection.cursor() as cursor:
        cursor.execute(engine.START_SQL, [job_id, attempt])
    # the heartbeat is fresh, but the attempt started longer ago than the kind's 60 s timeout
    Job.objects.filter(pk=job_id).update(
        attempt_started_at=timezone.now() - timedelta(seconds=61), heartbeat_at=timezone.now()
    )
    assert engine.jobs_rescue_stale()["rescued"] == 1
    job.refresh_from_db()
    assert job.status == "retrying" and "timeout" in job.error
    assert engine.job_attempt_succeeded(job_id=job_id, attempt=attempt, outcome={}, ctx=None) is False
    assert Job.objects.get(pk=job_id).status == "retrying"


@pytest.mark.django_db
def test_fresh_running_job_is_left_alone_by_the_rescue(user):
    give_credits(user, 10)
    services.job_create(user=user, kind_code="test_script")
    ((job_id, attempt),) = engine.jobs_claim(limit=1)
    with connection.cursor() as cursor:
        cursor.execute(engine.START_SQL, [job_id, attempt])
    assert engine.jobs_rescue_stale()["rescued"] == 0
    assert Job.objects.get(pk=job_id).status == "processing"


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_the_start_skips_the_flush_wait_for_its_own_statement_only(payer):
    services.job_create(user=payer, kind_code="test_script", params={})
    ((job_id, attempt),) = engine.jobs_claim(limit=1)
    assert connection.get_autocommit() and not connection.in_atomic_block

    job = engine._job_start(job_id, attempt)

    assert job is not None and job.status == "processing" and job.kind.code == "test_script"
    assert Job.objects.get(pk=job_id).status == "processing"
    assert synchronous_commit() == "on"  # the next statements (the completion) wait for the flush


@pytest.mark.django_db
def test_a_start_inside_a_transaction_keeps_that_transactions_durability(user):
    give_credits(user, 10)
    services.job_create(user=user, kind_code="test_script", params={})
    ((job_id, attempt),) = engine.jobs_claim(limit=1)
    assert connection.in_atomic_block

    assert engine._job_start(job_id, attempt).status == "processing"

    assert synchronous_commit() == "on"


def prepared_statements(alias: str) -> list[str]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


# marker → the statement, and how many times at least it runs for 3 jobs drained from a first
# claim of 1 (claims of 1, 2, then none; each job started alone; each batch completed at once)
ENGINE_STATEMENTS = {
    "ORDER BY priority DESC, queued_at ASC": (engine.CLAIM_SQL, 3),
    "attempt_started_at = clock_timestamp()": (engine.START_SQL, 3),
    "AS d (id, attempt, successful, result, finished_at)": (engine.COMPLETE_BATCH_SQL, 2),
}


@pytest.mark.django_db(transaction=True)
def test_by_default_nothing_is_prepared_and_the_engine_runs_on_the_default_connection(payer, settings):
    # the default is safe behind PgBouncer in transaction mode: no prepared statement anywhere
    assert settings.DATABASE_PREPARED_STATEMENTS is False and settings.JOBS_DATABASE == "default"
    assert connection.settings_dict["OPTIONS"].get("prepare_threshold") is None
    connection.close()
    for _ in range(3):
        services.job_create(user=payer, kind_code="test_noop", params={})

    with CaptureQueriesContext(connection) as queries:
        assert engine.jobs_drain(budget_seconds=30, batch=1) == 3

    assert Job.objects.filter(user=payer, status="completed").count() == 3
    assert prepared_statements("default") == []
    for marker, (sql, runs) in ENGINE_STATEMENTS.items():
        assert marker in sql
        assert sum(marker in q["sql"] for q in queries.captured_queries) >= runs, marker  # logged as usual


@pytest.mark.django_db(transaction=True, databases=["default", "engine"])
def test_with_prepared_statements_on_only_the_engines_own_alias_prepares_them(payer, settings):
    # DATABASE_PREPARED_STATEMENTS=true points the engine at the `engine` alias (server-side
    # binding, prepare_threshold through Django's OPTIONS); the rest of the app is unaffected
    settings.JOBS_DATABASE = "engine"
    assert connections["engine"].settings_dict["OPTIONS"]["server_side_binding"] is True
    for alias in ("default", "engine"):
        connections[alias].close()  # fresh sessions: nothing prepared by an earlier test
    for _ in range(3):
        services.job_create(user=payer, kind_code="test_noop", params={})

    assert engine.jobs_drain(budget_seconds=30, batch=1) == 3

    assert Job.objects.filter(user=payer, status="completed").count() == 3
    prepared = prepared_statements("engine")
    for marker in ENGINE_STATEMENTS:
        # each prepared once, whatever the number of jobs
        assert sum(marker in statement for statement in prepared) == 1, (marker, prepared)
    assert prepared_statements("default") == []
    connections["engine"].close()
