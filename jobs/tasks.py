from celery import shared_task

from config.scheduled import period_key, scheduled_run
from jobs import engine, file_services


# The hard limit stays below the broker's visibility timeout (2 h), so Redis never hands a running
# wake-up to a second worker; an attempt cut short stops heartbeating and the rescue retries it.
@shared_task(
    name="jobs.run_queue",
    queue="jobs",
    acks_late=True,
    time_limit=60 * 60,
    soft_time_limit=55 * 60,
    ignore_result=True,
)
def run_queue() -> int:
    """A wake-up: claim and run due jobs from PostgreSQL (priority, then age). Carries no job id,
    so running it twice, or with nothing to do, is harmless."""
    return engine.jobs_drain()


@shared_task(
    name="jobs.rescue_stale", queue="default", time_limit=120, soft_time_limit=100, ignore_result=True
)
def rescue_stale() -> dict | None:
    """Every minute (config/schedules.py): rescue engine jobs whose worker stopped heartbeating,
    and fail jobs run elsewhere that went silent past their kind's timeout."""
    with scheduled_run("jobs.rescue_stale", period_key=period_key("minute")) as run:
        if run is None:
            return None
        run.counts = engine.jobs_rescue_stale()
    return run.counts


@shared_task(
    name="jobs.cleanup_dead_files",
    queue="default",
    time_limit=30 * 60,
    soft_time_limit=25 * 60,
    ignore_result=True,
)
def cleanup_dead_files() -> dict | None:
    """Nightly (config/schedules.py): delete files of jobs failed or cancelled more than
    JOBS_DEAD_FILES_DAYS ago. Once per UTC day; a rerun of the same day is a no-op."""
    with scheduled_run("jobs.cleanup_dead_files", period_key=period_key("day")) as run:
        if run is None:
            return None
        run.counts = file_services.job_files_cleanup_dead()
    return run.counts
