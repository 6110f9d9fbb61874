"""Run a periodic task at most once per period, recording what it did.

Usage in a task::

    @shared_task(name="analytics.generate_daily", queue="default", time_limit=..., soft_time_limit=...)
    def generate_daily():
        with scheduled_run("analytics.generate_daily", period_key=period_key("day")) as run:
            if run is None:          # this period already ran (or is running): a no-op
                return None
            run.counts = services.metrics_generate(...)   # a dict of what was done
        return run.counts

The claim is one `INSERT … ON CONFLICT DO NOTHING` in its own transaction, so two workers given
the same period race on the unique (task, period_key) index and exactly one runs. A failed run
can be run again: the next call takes the failed row over (under a row lock) and counts the
attempt. The body runs outside that transaction, so its own transactions commit as they go.
"""

import logging
from contextlib import contextmanager
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from config.failures import failure_report
from config.models import ScheduledRun

logger = logging.getLogger(__name__)

Outcome = ScheduledRun.Outcome


def period_key(period: str, *, now: datetime | None = None) -> str:
    """The key of the period `now` (UTC) falls in: `minute`, `hour`, `day`, `week` (ISO) or `month`."""
    now = (now or timezone.now()).astimezone(UTC)
    if period == "minute":
        return now.strftime("%Y-%m-%dT%H:%M")
    if period == "hour":
        return now.strftime("%Y-%m-%dT%H")
    if period == "day":
        return now.date().isoformat()
    if period == "week":
        year, week, _ = now.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return now.strftime("%Y-%m")
    raise ValueError(f"unknown period {period!r}")


def _claim(task: str, key: str) -> ScheduledRun | None:
    now = timezone.now()
    with transaction.atomic():
        run, created = ScheduledRun.objects.get_or_create(
            task=task, period_key=key, defaults={"started_at": now, "outcome": Outcome.RUNNING}
        )
        if created:
            return run
    with transaction.atomic():
        run = ScheduledRun.objects.select_for_update().get(pk=run.pk)
        if run.outcome != Outcome.FAILED:
            return None
        run.outcome, run.started_at, run.finished_at, run.error = Outcome.RUNNING, now, None, ""
        run.attempts += 1
        run.save(update_fields=["outcome", "started_at", "finished_at", "error", "attempts", "updated_at"])
        return run


@contextmanager
def scheduled_run(task: str, *, period_key: str):
    """Yield the claimed ScheduledRun, or None when the period already ran or is running.

    The body sets `run.counts` (a JSON-able dict). On return the run is `succeeded`; on an
    exception it is `failed` with the error, logged at ERROR, and the exception propagates.
    """
    run = _claim(task, period_key)  # get_or_create resolves a lost INSERT race by reading the winner
    if run is None:
        logger.info("scheduled run %s [%s] already done or running: skipped", task, period_key)
        yield None
        return
    try:
        yield run
    except BaseException as exc:
        ScheduledRun.objects.filter(pk=run.pk).update(
            outcome=Outcome.FAILED,
            finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}"[:10_000],
            counts=run.counts or {},
            updated_at=timezone.now(),
        )
        logger.error("scheduled run %s [%s] failed: %r", task, period_key, exc)
        failure_report(
            category="schedule",
            operation=task,
            step=period_key,
            error_code=type(exc).__name__,
            message=f"Scheduled run {task} [{period_key}] failed: {type(exc).__name__}",
            severity="high",
        )
        raise
    ScheduledRun.objects.filter(pk=run.pk).update(
        outcome=Outcome.SUCCEEDED,
        finished_at=timezone.now(),
        counts=run.counts or {},
        updated_at=timezone.now(),
    )
