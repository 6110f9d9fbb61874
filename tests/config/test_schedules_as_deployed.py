"""Every schedule runs as deployed: synced into django-celery-beat's tables, turned into
entries and dispatched by Beat's own code with their stored options, and run by a real worker
consuming the queues a plain `celery -A config worker` consumes, on Redis and on RabbitMQ."""

import time

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from config.celery import app as celery_app
from config.models import ScheduledRun
from config.schedules import SCHEDULES
from tests.conftest import finished_tasks, purge_queues, queued_messages
from tests.factories import admin_login

QUEUES = [queue.name for queue in settings.CELERY_TASK_QUEUES]
# Early in a minute, so the every-minute rescue's period cannot roll over during the test.
PINNED = "2026-11-22T10:15:02Z"


def _purge():
    purge_queues(*QUEUES)


def _queued() -> int:
    return queued_messages(*QUEUES)


def _dispatch_all_as_beat_does() -> set[str]:
    """What Beat does at each tick for a due entry: ModelEntry from the row, then
    Scheduler.apply_async with the entry's stored options (queue, headers, expiry…).
    Returns the ids of the messages sent."""
    scheduler = DatabaseScheduler(app=celery_app, lazy=True)
    return {
        scheduler.apply_async(ModelEntry(model, app=celery_app), advance=False).id
        for model in PeriodicTask.objects.filter(name__in=[s.name for s in SCHEDULES])
    }


def _wait(condition, what: str, seconds: float = 90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def worker(transactional_db, celery_broker):
    from celery.contrib.testing.worker import start_worker

    _purge()
    with start_worker(
        celery_app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=QUEUES,
        shutdown_timeout=60,
        loglevel="WARNING",
    ):
        yield
    _purge()
    with connection.cursor() as cursor:  # the worker thread's connection would block the flush
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.mark.django_db(transaction=True)
def test_every_schedule_is_dispatched_by_beat_and_run_once_per_period_by_a_real_worker(worker):
    # given the schedules as `make run` and a deployment's release step write them
    call_command("sync_schedules", verbosity=0)
    celery_app.loader.import_default_modules()  # what beat and the worker do at start-up
    tasks = {s.task for s in SCHEDULES}
    assert PeriodicTask.objects.filter(task__in=tasks, enabled=True).count() == len(SCHEDULES)

    with time_machine.travel(PINNED, tick=True):
        # when Beat dispatches every one of them (no exception: each is dispatchable)
        _dispatch_all_as_beat_does()

        # then a real worker runs each, and each records its run
        _wait(
            lambda: set(ScheduledRun.objects.values_list("task", flat=True)) >= tasks,
            "every schedule to record a ScheduledRun",
        )
        _wait(
            lambda: _queued() == 0 and not ScheduledRun.objects.filter(outcome="running").exists(),
            "every run to finish",
        )
        runs = {r.task: r for r in ScheduledRun.objects.all()}
        failed = {task: run.error for task, run in runs.items() if run.outcome != "succeeded"}
        assert not failed, f"schedules that failed on a real worker: {failed}"

        # and when Beat fires them all again in the same period, nothing runs twice
        with finished_tasks() as finished:
            sent = _dispatch_all_as_beat_does()
            # every second message handled by the worker (not merely taken off the queue)
            _wait(lambda: sent <= finished, "the second dispatch to be handled")

    assert ScheduledRun.objects.count() == len(tasks)
    assert all(run.attempts == 1 for run in ScheduledRun.objects.all())


@pytest.mark.django_db
def test_run_selected_tasks_in_the_admin_dispatches_every_schedule(client):
    call_command("sync_schedules", verbosity=0)
    _purge()
    admin = get_user_model().objects.create_superuser(email="ops@example.com", password="x-Long-pass-1")
    admin_login(client, admin)
    ids = list(PeriodicTask.objects.filter(name__in=[s.name for s in SCHEDULES]).values_list("pk", flat=True))

    response = client.post(
        "/admin/django_celery_beat/periodictask/",
        {"action": "run_tasks", "_selected_action": ids},
        follow=True,
    )

    assert response.status_code == 200
    assert _queued() == len(SCHEDULES)
    _purge()
