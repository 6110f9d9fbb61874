"""Telling a user their job finished."""

import logging

from accounts.emails import email_send_after_commit
from accounts.models import UserPreferences
from jobs.models import Job
from jobs.states import JobStatus

logger = logging.getLogger(__name__)
FINISHED = (JobStatus.COMPLETED, JobStatus.FAILED)


_READ = object()


def job_finished_notify(*, job: Job, notifications=_READ) -> bool:
    """Email the owner that `job` completed or failed, after commit (Celery), if their
    preferences ask for it: `notifications.email` and `notifications.job_finished` both on.
    A cancelled job is not announced (the user cancelled it). Returns whether one was queued.

    Called by `job_transition` in the transaction that finished the job, so a rolled-back
    finish sends nothing, and a job finishes (and is announced) once (or by the engine right
    after its one-statement completion committed). `notifications`: the owner's preferences
    when the caller already read them (a dict, {} for none), else they are read here. Queuing
    the email never raises (a failure is logged): the finish it announces stands.
    """
    if job.status not in FINISHED or not job.user.is_active or job.user.deleted_at is not None:
        return False
    if notifications is _READ:
        notifications = (
            UserPreferences.objects.filter(user_id=job.user_id)
            .values_list("notifications", flat=True)
            .first()
        )
    wanted = notifications or {}
    if not wanted.get("email", True) or not wanted.get("job_finished", True):
        return False
    try:
        _enqueue(job)
    except Exception:
        # The job's finish stands (it may already be committed): a lost email is logged, never
        # raised into the transition or the engine's batch.
        logger.exception("Could not queue the job_finished email for job %s", job.pk)
        return False
    return True


def _enqueue(job: Job) -> None:
    email_send_after_commit(
        template="job_finished",
        to=[job.user.email],
        context={
            "name": job.user.name,
            "kind": job.kind.name or job.kind.code,
            "status": job.status,
            "job_id": str(job.pk),
            "external_id": job.external_id or "",
            "requested": job.requested_count,
            "successful": job.successful_count,
            "failed": job.failed_count,
            "credits_refunded": job.credits_refunded,
            "error": (job.error or "")[:500],
        },
    )
