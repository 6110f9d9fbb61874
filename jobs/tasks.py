from celery import shared_task
from django.conf import settings

from config.scheduled import period_key, scheduled_run
from jobs import engine, file_services, replicate


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
        run.counts["replicate_announced"] = replicate.replicate_due_announce()
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


@shared_task(
    name="jobs.replicate_start", queue="default", time_limit=120, soft_time_limit=100, ignore_result=True
)
def replicate_start(job_id: str) -> None:
    """Start the Replicate prediction of a job of a mapped kind (jobs.replicate). Safe to run
    twice: the job is claimed before the call, and a claimed job is left alone."""
    replicate.replicate_prediction_start(job_id=job_id)


@shared_task(
    name="jobs.replicate_cancel", queue="default", time_limit=120, soft_time_limit=100, ignore_result=True
)
def replicate_cancel(job_id: str) -> None:
    """Cancel at Replicate the prediction of a job cancelled here (jobs.replicate)."""
    replicate.replicate_prediction_cancel(job_id=job_id)


@shared_task(
    name="jobs.replicate_orphan_cancel",
    queue="default",
    time_limit=120,
    soft_time_limit=100,
    ignore_result=True,
)
def replicate_orphan_cancel(job_id: str, prediction_id: str) -> None:
    """Cancel at Replicate a prediction its job does not follow (jobs.replicate)."""
    replicate.replicate_orphan_cancel(job_id=job_id, prediction_id=prediction_id)


@shared_task(
    bind=True,
    name="jobs.replicate_outputs_fetch",
    queue="default",
    time_limit=30 * 60,
    soft_time_limit=25 * 60,
    ignore_result=True,
    max_retries=None,
)
def replicate_outputs_fetch(self, job_id: str) -> str:
    """Copy a succeeded prediction's outputs into the job's files and complete it. A transient
    download failure is retried with backoff REPLICATE_DOWNLOAD_RETRIES times, then the job
    fails and is refunded. Safe to run twice (only a finalizing job is touched)."""
    try:
        return replicate.replicate_outputs_fetch(job_id=job_id)
    except replicate.OutputUnavailable as exc:
        if self.request.retries < settings.REPLICATE_DOWNLOAD_RETRIES:
            raise self.retry(countdown=replicate.download_backoff(self.request.retries)) from None
        return replicate.replicate_outputs_given_up(job_id=job_id, error=str(exc))
