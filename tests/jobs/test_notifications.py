"""A finished job is announced by email to its owner, as their preferences say."""

import pytest

from accounts.models import UserPreferences
from jobs import services
from jobs.services import Reporter
from tests.jobs.conftest import give_credits

pytestmark = pytest.mark.django_db


def emails_queued(callbacks) -> int:
    return sum(cb.__qualname__.startswith("email_task_after_commit") for cb in callbacks)


def _report(user, external_id, **report):
    return services.job_stats_upsert(
        user=user,
        external_id=external_id,
        kind_code="account_batch",
        requested_count=3,
        reporter=Reporter.USER,
        **report,
    )


def test_a_completed_job_emails_its_owner_once_through_a_real_worker(user, sent):
    give_credits(user, 10)
    with sent.capture():
        _report(user, "n-1", status="completed", successful_count=2, failed_count=1)
        _report(user, "n-1", status="completed", successful_count=2, failed_count=1)  # repeated report
    [message] = sent.wait(1)

    assert message.to == [user.email] and "is done" in message.subject
    assert "succeeded: 2, failed: 1" in message.body and "1 credit went back" in message.body


def test_a_failed_job_is_announced_but_a_cancelled_one_is_not(user, django_capture_on_commit_callbacks):
    give_credits(user, 10)
    with django_capture_on_commit_callbacks() as failed:
        _report(user, "n-2", status="failed")
    job = _report(user, "n-3", status="processing")
    with django_capture_on_commit_callbacks() as cancelled:
        services.job_cancel(job=job)

    assert emails_queued(failed) == 1 and emails_queued(cancelled) == 0


@pytest.mark.parametrize(
    "notifications",
    [
        {"email": True, "push": False, "job_finished": False, "marketing": False},
        {"email": False, "push": False, "job_finished": True, "marketing": False},
    ],
)
def test_preferences_turn_the_email_off(user, notifications, django_capture_on_commit_callbacks):
    give_credits(user, 10)
    UserPreferences.objects.filter(user=user).update(notifications=notifications)
    with django_capture_on_commit_callbacks() as callbacks:
        _report(user, "n-4", status="completed")
    assert emails_queued(callbacks) == 0


@pytest.mark.parametrize("email_on", [True, False])
def test_a_job_the_engine_completes_in_one_statement_is_announced_as_its_preferences_say(
    user, email_on, django_capture_on_commit_callbacks
):
    from jobs import engine
    from jobs.models import Job

    give_credits(user, 10)
    UserPreferences.objects.filter(user=user).update(
        notifications={"email": email_on, "push": False, "job_finished": True, "marketing": False}
    )
    job = services.job_create(user=user, kind_code="test_script", requested_count=2)
    with django_capture_on_commit_callbacks() as callbacks:
        assert engine.jobs_drain(budget_seconds=60, batch=1) == 1

    job = Job.objects.get(pk=job.pk)
    assert (job.status, job.progress, job.successful_count, job.failed_count, job.error) == (
        "completed",
        100,
        2,
        0,
        "",
    )
    assert job.result == {"attempt": 1} and job.completed_at >= job.started_at
    assert (job.credits_charged, job.credits_refunded, job.attempts) == (2, 0, 1)
    assert emails_queued(callbacks) == (1 if email_on else 0)
