from celery import shared_task

from jobs import engine


# The hard limit stays below the broker's visibility timeout (2 h), so Redis never hands a running
# wake-up to a second worker; an attempt cut short stops heartbeating and the rescue retries it.
@shared_task(name="jobs.run_queue", queue="jobs", acks_late=True, time_limit=60 * 60,
             soft_time_limit=55 * 60, ignore_result=True)
def run_queue() -> int:
    """A wake-up: claim and run due jobs from PostgreSQL (priority, then age). Carries no job id,
    so running it twice, or with nothing to do, is harmless."""
    return engine.jobs_drain()


@shared_task(name="jobs.rescue_stale", queue="default", time_limit=120, soft_time_limit=110,
             ignore_result=True)
def rescue_stale() -> dict:
    """Every minute (config/schedules.py): rescue engine jobs whose worker stopped heartbeating,
    and fail jobs run elsewhere that went silent past their kind's timeout."""
    return engine.jobs_rescue_stale()
