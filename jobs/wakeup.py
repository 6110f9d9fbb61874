"""Announce "there may be engine work" to the workers, after commit.

Sent by task name through Celery's current app, so neither the services nor the engine import
`jobs.tasks` (which imports the engine): the import graph has no circle.
"""

import logging
import math

from celery import current_app
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

RUN_QUEUE_TASK = "jobs.run_queue"


def enqueue_wakeup(*, countdown: float | None = None) -> None:
    """Send one `jobs.run_queue` wake-up when the current transaction commits (at once in
    autocommit). A broker outage is logged, never raised: the beat rescue re-announces due jobs.
    A countdown is rounded up to whole seconds: RabbitMQ's delayed delivery (quorum queues)
    counts in seconds and refuses a delay under one; waking a little late is harmless, the
    claim takes what is due."""
    if countdown:
        countdown = math.ceil(countdown)

    def send():
        try:
            current_app.send_task(RUN_QUEUE_TASK, queue=settings.JOBS_QUEUE, countdown=countdown)
        except Exception:  # the broker being down must not fail a committed request
            logger.exception("Could not enqueue a job wake-up; the beat rescue will pick the job up.")

    transaction.on_commit(send)


REPLICATE_START_TASK = "jobs.replicate_start"


def enqueue_replicate_start(*, job_id, countdown: float | None = None) -> None:
    """Send `jobs.replicate_start` for one job when the current transaction commits (a job of a
    kind mapped to a Replicate model version). A broker outage is logged, never raised: the beat
    rescue re-announces due Replicate jobs."""

    def send():
        try:
            current_app.send_task(
                REPLICATE_START_TASK, args=[str(job_id)], queue="default", countdown=countdown
            )
        except Exception:  # the broker being down must not fail a committed request
            logger.exception("Could not enqueue the Replicate start of job %s.", job_id)

    transaction.on_commit(send)


REPLICATE_CANCEL_TASK = "jobs.replicate_cancel"


def enqueue_replicate_cancel(*, job_id) -> None:
    """Send `jobs.replicate_cancel` when the current transaction commits: a cancelled job whose
    Replicate prediction may still be running (and billed)."""

    def send():
        try:
            current_app.send_task(REPLICATE_CANCEL_TASK, args=[str(job_id)], queue="default")
        except Exception:  # the prediction then runs to its end; its webhook no longer moves the job
            logger.exception("Could not enqueue the Replicate cancel of job %s.", job_id)

    transaction.on_commit(send)


REPLICATE_ORPHAN_CANCEL_TASK = "jobs.replicate_orphan_cancel"


def enqueue_replicate_orphan_cancel(*, job_id, prediction_id: str) -> None:
    """Send `jobs.replicate_orphan_cancel` when the current transaction commits: a prediction
    running at Replicate (and billed) that its job does not follow."""

    def send():
        try:
            current_app.send_task(
                REPLICATE_ORPHAN_CANCEL_TASK, args=[str(job_id), prediction_id], queue="default"
            )
        except Exception:  # the prediction then runs to its end; its webhooks no longer move the job
            logger.exception("Could not enqueue the cancel of prediction %s (job %s).", prediction_id, job_id)

    transaction.on_commit(send)
