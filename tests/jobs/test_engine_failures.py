"""One job's failing completion, storage write or email enqueue affects that job only.

Each test puts one poisoned job third in a batch of 8 claimed at once, runs the batch (one
`jobs_drain`, or a real Celery worker), and checks that the other 7 completed in that same
drain on their first attempt (no rescue involved), and what became of the poisoned one and
its credits. Retries are pushed an hour away so the drain does not run the poisoned job again.
"""

from pathlib import Path

import pytest
from django.db import connection, transaction

from credits.selectors import balance_get
from jobs import engine, notifications, services
from jobs.models import Job, JobFile
from jobs.states import JobStatus
from tests.factories import UserFactory
from tests.jobs.conftest import give_credits
from tests.jobs.storage import FAIL_MARKER
from tests.jobs.test_engine import wait_for, worker

S = JobStatus
POISON_POSITION = 2


@pytest.fixture
def batch_settings(settings):
    settings.JOBS_CLAIM_BATCH = 8
    settings.JOBS_RETRY_BASE_SECONDS = 3600
    settings.JOBS_RETRY_MAX_SECONDS = 3600
    settings.JOBS_DRAIN_SECONDS = 60
    return settings


@pytest.fixture
def owner(transactional_db):
    user = UserFactory()
    give_credits(user, 100)
    return user


def queue_batch(owner, kind_code: str, *, poison_owner=None, poison_params=None) -> tuple[list[Job], Job]:
    """8 jobs committed together (one claim takes them all), the third one poisoned."""
    jobs = []
    with transaction.atomic():
        for i in range(8):
            poisoned = i == POISON_POSITION
            jobs.append(
                services.job_create(
                    user=(poison_owner or owner) if poisoned else owner,
                    kind_code=kind_code,
                    params=(poison_params or {}) if poisoned else {},
                )
            )
    return jobs, jobs[POISON_POSITION]


def assert_the_other_seven_completed_on_their_first_attempt(jobs, poisoned) -> None:
    others = Job.objects.filter(pk__in=[j.pk for j in jobs if j.pk != poisoned.pk])
    assert (
        sorted(others.values_list("status", "attempts", "credits_charged", "credits_refunded"))
        == [(S.COMPLETED, 1, 1, 0)] * 7
    )


@pytest.fixture
def poison_completion():
    """A database error raised by any write completing the given job (a real failure of the
    completing statement or transaction, whichever path the engine takes)."""
    table = Job._meta.db_table

    def poison(job_id) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                CREATE FUNCTION test_poison_completion() RETURNS trigger AS $$
                BEGIN
                    IF NEW.id = '{job_id}' THEN
                        RAISE EXCEPTION 'injected completion failure';
                    END IF;
                    RETURN NEW;
                END $$ LANGUAGE plpgsql;
                CREATE TRIGGER test_poison_completion BEFORE UPDATE OF status ON {table}
                    FOR EACH ROW WHEN (NEW.status = '{S.COMPLETED.value}')
                    EXECUTE FUNCTION test_poison_completion();
                """
            )

    yield poison
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER IF EXISTS test_poison_completion ON {table}")
        cursor.execute("DROP FUNCTION IF EXISTS test_poison_completion()")


def stored_files(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind_code", ["test_noop", "test_output"])
def test_a_failing_completion_retries_that_job_only_and_the_other_seven_complete_in_the_same_drain(
    owner, batch_settings, poison_completion, kind_code
):
    # given: 8 jobs, the third one's completion fails in the database (one statement for
    # test_noop, the locked transaction with an output file for test_output)
    jobs, poisoned = queue_batch(owner, kind_code)
    poison_completion(poisoned.pk)

    # when
    assert engine.jobs_drain(budget_seconds=60) == 8

    # then
    assert_the_other_seven_completed_on_their_first_attempt(jobs, poisoned)
    poisoned.refresh_from_db()
    assert (poisoned.status, poisoned.attempts) == (S.RETRYING, 1)
    assert "injected completion failure" in poisoned.error
    assert (poisoned.credits_charged, poisoned.credits_refunded) == (1, 0)
    assert balance_get(user=owner) == 92
    if kind_code == "test_output":
        # its output file was written before the transaction and removed when it rolled back
        assert not JobFile.objects.filter(job=poisoned).exists()
        assert JobFile.objects.filter(role="output").count() == 7
        assert len(stored_files(batch_settings)) == 7


@pytest.mark.django_db(transaction=True)
def test_a_completion_failing_on_the_last_attempt_fails_and_refunds_that_job_only(
    owner, batch_settings, poison_completion
):
    jobs, poisoned = queue_batch(owner, "test_noop")
    Job.objects.filter(pk=poisoned.pk).update(max_retries=0)
    poison_completion(poisoned.pk)

    assert engine.jobs_drain(budget_seconds=60) == 8

    assert_the_other_seven_completed_on_their_first_attempt(jobs, poisoned)
    poisoned.refresh_from_db()
    assert (poisoned.status, poisoned.attempts) == (S.FAILED, 1)
    assert (poisoned.credits_charged, poisoned.credits_refunded) == (1, 1)
    assert balance_get(user=owner) == 93


@pytest.mark.django_db(transaction=True)
def test_a_failing_storage_write_retries_that_job_only_and_leaves_no_file(owner, batch_settings):
    batch_settings.STORAGES = {
        **batch_settings.STORAGES,
        "default": {"BACKEND": "tests.jobs.storage.FailingStorage"},
    }
    jobs, poisoned = queue_batch(owner, "test_output", poison_params={"output": FAIL_MARKER.decode()})

    assert engine.jobs_drain(budget_seconds=60) == 8

    assert_the_other_seven_completed_on_their_first_attempt(jobs, poisoned)
    poisoned.refresh_from_db()
    assert (poisoned.status, poisoned.attempts) == (S.RETRYING, 1)
    assert "injected storage write failure" in poisoned.error
    assert (poisoned.credits_charged, poisoned.credits_refunded) == (1, 0)
    assert not JobFile.objects.filter(job=poisoned).exists()
    assert JobFile.objects.filter(role="output").count() == 7
    assert len(stored_files(batch_settings)) == 7


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind_code", ["test_noop", "test_output"])
def test_a_failing_email_enqueue_loses_that_email_only_and_every_job_completes(
    owner, batch_settings, monkeypatch, kind_code
):
    # given: the third job belongs to a user whose finish email cannot be queued
    unlucky = UserFactory()
    give_credits(unlucky, 10)
    queued = []

    def enqueue(*, template, to, context):
        if to == [unlucky.email]:
            raise ConnectionError("injected email enqueue failure")
        queued.append(context["job_id"])

    monkeypatch.setattr(notifications, "email_send_after_commit", enqueue)
    jobs, poisoned = queue_batch(owner, kind_code, poison_owner=unlucky)

    assert engine.jobs_drain(budget_seconds=60) == 8

    # then: the finish stands (completing again would redo the work), only its email is lost
    assert_the_other_seven_completed_on_their_first_attempt(jobs, poisoned)
    poisoned.refresh_from_db()
    assert (poisoned.status, poisoned.attempts, poisoned.credits_charged, poisoned.credits_refunded) == (
        S.COMPLETED,
        1,
        1,
        0,
    )
    assert sorted(queued) == sorted(str(j.pk) for j in jobs if j.pk != poisoned.pk)
    assert balance_get(user=unlucky) == 9


@pytest.mark.django_db(transaction=True)
def test_with_a_real_worker_a_failing_completion_strands_none_of_the_batch(
    owner, batch_settings, poison_completion, broker, drop_other_connections
):
    # given: a real Celery worker on the real broker; the batch is committed before it starts
    jobs, poisoned = queue_batch(owner, "test_output")
    poison_completion(poisoned.pk)

    settled = Job.objects.filter(pk__in=[j.pk for j in jobs], status__in=[S.COMPLETED, S.RETRYING])

    # when
    with worker():
        wait_for(lambda: settled.count() == 8, "the batch to be settled")

    # then
    assert_the_other_seven_completed_on_their_first_attempt(jobs, poisoned)
    poisoned.refresh_from_db()
    assert (poisoned.status, poisoned.attempts, poisoned.credits_charged, poisoned.credits_refunded) == (
        S.RETRYING,
        1,
        1,
        0,
    )
    assert not JobFile.objects.filter(job=poisoned).exists()
    assert len(stored_files(batch_settings)) == 7
