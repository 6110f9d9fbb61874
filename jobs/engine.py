"""The job engine: Celery wakes workers up, PostgreSQL decides what they run (SPEC §5).

A Celery message (`jobs.run_queue`) carries no job: it only says "there may be work". The
worker then claims jobs from PostgreSQL with `FOR UPDATE SKIP LOCKED` ordered by priority then
age, so priority holds however the messages are ordered, two workers never take the same job,
and a lost message loses nothing (the beat rescue sends new wake-ups).

One attempt of one job:
1. claim (one UPDATE … RETURNING for up to JOBS_CLAIM_BATCH jobs): `queued|retrying → preparing`,
   attempts + 1, heartbeat now. The attempt number is the job's lease: every later write of this
   attempt checks it, so a worker presumed dead that wakes up again cannot overwrite anything.
2. `preparing → processing` (started_at), then the processor runs outside any transaction; a
   heartbeat thread refreshes heartbeat_at of every job this worker holds; progress is written
   by short statements so pollers see it.
3. success: one transaction writes outputs, artifacts, counts and `completed` (credits for failed
   units refunded by the signal). Failure: `retrying` with exponential backoff and jitter while
   attempts ≤ max_retries, else `failed` (the signal refunds the charge).
Claims, heartbeats and progress bypass `save()` on purpose: none of them changes a status that
has a credit meaning, and they must stay single cheap statements.
"""

import logging
import random
import threading
import time
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import DurationField, ExpressionWrapper, F, Q
from django.utils import timezone

from jobs import conf
from jobs.models import Job
from jobs.processors import JobContext, PermanentJobError, get_processor
from jobs.states import JobStatus

logger = logging.getLogger(__name__)
S = JobStatus

CLAIM_SQL = """
UPDATE jobs_job AS j
   SET status = 'preparing', attempts = j.attempts + 1, heartbeat_at = now(),
       next_attempt_at = NULL, updated_at = now()
 WHERE j.id IN (
        SELECT id FROM jobs_job
         WHERE status IN ('queued', 'retrying') AND runs_on_engine
           AND (next_attempt_at IS NULL OR next_attempt_at <= now())
         ORDER BY priority DESC, queued_at ASC
         LIMIT %s
           FOR UPDATE SKIP LOCKED)
RETURNING j.id, j.attempts, j.priority, j.queued_at
"""

START_SQL = """
UPDATE jobs_job SET status = 'processing', started_at = COALESCE(started_at, clock_timestamp()),
       attempt_started_at = clock_timestamp(), heartbeat_at = now(), updated_at = now()
 WHERE id = %s AND attempts = %s AND status = 'preparing'
"""


def jobs_claim(*, limit: int = 1) -> list[tuple]:
    """Claim up to `limit` due engine jobs, highest priority then oldest first.

    One statement in its own transaction; SKIP LOCKED makes concurrent claimers take disjoint
    jobs without waiting. Returns [(job_id, attempt)] in the order they must run.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(CLAIM_SQL, [limit])
        rows = cursor.fetchall()
    rows.sort(key=lambda r: (-r[2], r[3]))
    return [(r[0], r[1]) for r in rows]


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter: base × 2^(attempts-1), capped, scaled by U(0.5, 1.0) so
    jobs that failed together do not come back together."""
    base = float(conf.get("JOBS_RETRY_BASE_SECONDS"))
    cap = float(conf.get("JOBS_RETRY_MAX_SECONDS"))
    return min(cap, base * (2 ** max(0, attempts - 1))) * random.uniform(0.5, 1.0)


class Heartbeat:
    """A daemon thread refreshing heartbeat_at of the jobs this worker holds (its own connection)."""

    def __init__(self):
        self.held: dict = {}  # job id → attempt
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobs-heartbeat", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)

    def hold(self, job_id, attempt) -> None:
        with self._lock:
            self.held[job_id] = attempt

    def release(self, job_id) -> None:
        with self._lock:
            self.held.pop(job_id, None)

    def _run(self) -> None:
        interval = float(conf.get("JOBS_HEARTBEAT_SECONDS"))
        try:
            while not self._stop.wait(interval):
                with self._lock:
                    held = list(self.held.items())
                for job_id, attempt in held:
                    Job.objects.filter(pk=job_id, attempts=attempt,
                                       status__in=(S.PREPARING, S.PROCESSING, S.FINALIZING)).update(
                        heartbeat_at=timezone.now())
        except Exception:
            logger.exception("Heartbeat thread stopped; the rescue will treat these jobs as lost.")
        finally:
            connection.close()


def _owned(job_id, attempt) -> Job | None:
    """The job locked, if this attempt still owns it (it is running and nobody re-claimed it)."""
    job = (Job.objects.select_for_update(of=("self",)).select_related("kind", "user")
           .filter(pk=job_id, attempts=attempt,
                   status__in=(S.PREPARING, S.PROCESSING, S.FINALIZING)).first())
    return job


@transaction.atomic
def job_attempt_succeeded(*, job_id, attempt: int, outcome: dict | None, ctx: JobContext | None) -> bool:
    """Complete the attempt: outputs, artifacts, counts and `completed`, in one transaction.

    Locks the job row; does nothing (returns False) if this attempt no longer owns the job.
    """
    from jobs.services import job_outputs_store

    job = _owned(job_id, attempt)
    if job is None:
        return False
    outcome = outcome or {}
    failed = int(outcome.get("failed_count", 0))
    successful = int(outcome.get("successful_count", job.requested_count - failed))
    job.failed_count = max(job.failed_count, min(failed, job.requested_count))
    job.successful_count = max(job.successful_count,
                               min(successful, job.requested_count - job.failed_count))
    if "result" in outcome:
        job.result = outcome["result"]
    job.status = S.COMPLETED
    job.progress = 100
    job.error = ""
    job.completed_at = timezone.now()
    job.save()
    if ctx is not None and (ctx.outputs or ctx.artifacts):
        job_outputs_store(job, ctx.outputs, ctx.artifacts)
    return True


@transaction.atomic
def job_attempt_failed(*, job_id, attempt: int, error: str, permanent: bool = False) -> str | None:
    """Record a failed attempt: `retrying` after a jittered backoff while attempts remain, else
    `failed` (the signal refunds the charge, once). Locks the job row; returns the new status,
    or None if this attempt no longer owns the job."""
    job = _owned(job_id, attempt)
    if job is None:
        return None
    job.error = str(error)[:10_000]
    if permanent or job.attempts > job.max_retries:
        job.status = S.FAILED
        job.completed_at = timezone.now()
        job.save()
        return job.status
    delay = retry_delay(job.attempts)
    job.status = S.RETRYING
    job.next_attempt_at = timezone.now() + timedelta(seconds=delay)
    job.save()
    from jobs.services import _enqueue_wakeup

    _enqueue_wakeup(countdown=delay)
    return job.status


def job_run(*, job_id, attempt: int, heartbeat: Heartbeat | None = None) -> str:
    """Run one claimed attempt to its end. Never raises for a processor error."""
    with connection.cursor() as cursor:
        cursor.execute(START_SQL, [job_id, attempt])
        if cursor.rowcount != 1:
            return "lost"
    job = Job.objects.select_related("kind", "user").get(pk=job_id)
    processor = get_processor(job.kind.code)
    if processor is None:
        job_attempt_failed(job_id=job_id, attempt=attempt, permanent=True,
                           error=f"No processor is registered for kind {job.kind.code}.")
        return "failed"
    ctx = JobContext(job=job, attempt=attempt)
    try:
        outcome = processor(ctx)
    except PermanentJobError as exc:
        return job_attempt_failed(job_id=job_id, attempt=attempt, error=str(exc), permanent=True) or "lost"
    except Exception as exc:
        logger.warning("Job %s attempt %s failed: %r", job_id, attempt, exc)
        error = f"{type(exc).__name__}: {exc}"
        return job_attempt_failed(job_id=job_id, attempt=attempt, error=error) or "lost"
    finally:
        if heartbeat is not None:
            heartbeat.release(job_id)
    ok = job_attempt_succeeded(job_id=job_id, attempt=attempt, outcome=outcome, ctx=ctx)
    return "completed" if ok else "lost"


def jobs_drain(*, budget_seconds: float | None = None, batch: int | None = None) -> int:
    """Claim and run due jobs until none is left or the time budget is spent; returns how many
    attempts ran. If the budget ran out with work left, another wake-up is sent."""
    budget = float(conf.get("JOBS_DRAIN_SECONDS") if budget_seconds is None else budget_seconds)
    batch = int(conf.get("JOBS_CLAIM_BATCH") if batch is None else batch)
    deadline = time.monotonic() + budget
    ran = 0
    with Heartbeat() as heartbeat:
        while time.monotonic() < deadline:
            claimed = jobs_claim(limit=batch)
            if not claimed:
                return ran
            for job_id, attempt in claimed:
                heartbeat.hold(job_id, attempt)
            for job_id, attempt in claimed:
                job_run(job_id=job_id, attempt=attempt, heartbeat=heartbeat)
                ran += 1
    from jobs.services import _enqueue_wakeup

    with transaction.atomic():
        _enqueue_wakeup()
    return ran


def jobs_rescue_stale(*, now=None, limit: int = 500) -> dict:
    """Beat, every minute: jobs whose worker stopped heartbeating, or whose attempt has run longer
    than its kind's timeout, are treated as a failed attempt (`retrying`, or `failed` and
    refunded after the last retry). A worker still running a timed-out attempt can no longer
    write its result (the lease check refuses it). Nothing is charged: the charge happened once,
    when the job entered `queued`. Also re-announces due claimable jobs, in case their wake-up
    message was lost. Safe to run concurrently and twice."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=float(conf.get("JOBS_STALE_AFTER_SECONDS")))
    timed_out = Q(attempt_started_at__lt=now - ExpressionWrapper(F("kind__timeout") * timedelta(seconds=1),
                                                                output_field=DurationField()))
    lost = Q(heartbeat_at__lt=stale_before) | timed_out
    running = Job.objects.filter(status__in=(S.PREPARING, S.PROCESSING, S.FINALIZING))
    candidates = list(running.filter(lost).values_list("pk", "attempts")[:limit])
    rescued = 0
    for job_id, attempt in candidates:
        with transaction.atomic():
            job = (running.select_for_update(skip_locked=True, of=("self",))
                   .filter(lost, pk=job_id, attempts=attempt).first())
            if job is None:
                continue
            stale = job.heartbeat_at is None or job.heartbeat_at < stale_before
            error = ("The worker stopped responding (stale heartbeat)." if stale else
                     f"The attempt ran longer than the {job.kind.timeout} s timeout.")
            status = job_attempt_failed(job_id=job_id, attempt=attempt, error=error)
            if status == S.RETRYING and stale:
                # Due at once: the backoff is for processor errors, not for a worker that died.
                Job.objects.filter(pk=job_id).update(next_attempt_at=now)
            rescued += 1
    due = Job.objects.filter(status__in=(S.QUEUED, S.RETRYING), runs_on_engine=True).exclude(
        next_attempt_at__gt=now).count()
    if due:
        from jobs.services import _enqueue_wakeup

        with transaction.atomic():
            for _ in range(min(due, 4)):
                _enqueue_wakeup()
    return {"rescued": rescued, "due": due}
