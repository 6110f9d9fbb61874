"""The job engine: Celery wakes workers up, PostgreSQL decides what they run.

A Celery message (`jobs.run_queue`) carries no job: it only says "there may be work". The
worker then claims jobs from PostgreSQL with `FOR UPDATE SKIP LOCKED` ordered by priority then
age, so priority holds however the messages are ordered, two workers never take the same job,
and a lost message loses nothing (the beat rescue sends new wake-ups).

One attempt of one job:
1. claim (one UPDATE … RETURNING for a batch of jobs, sized by `claim_size`): `queued|retrying → preparing`,
   attempts + 1, heartbeat now. The attempt number is the job's lease: every later write of this
   attempt checks it, so a worker presumed dead that wakes up again cannot overwrite anything.
2. `preparing → processing` (started_at; one UPDATE … RETURNING the job and its kind), then the
   processor runs outside any transaction; a heartbeat thread refreshes heartbeat_at of every
   job this worker holds; progress is written by short statements so pollers see it.
3. success: one transaction writes outputs, artifacts, counts and `completed` (credits for failed
   units refunded by the signal) — or, with nothing to store and no credit to move, one
   lease-checked statement (COMPLETE_SQL). Failure: `retrying` with exponential backoff and
   jitter while attempts ≤ max_retries, else `failed` (the signal refunds the charge).
Claims, heartbeats and progress bypass `save()` on purpose: none of them changes a status that
has a credit meaning, and they must stay single cheap statements. The two status writes among
them (claim: → preparing, start: → processing) authorise themselves to the status guard
(migration 0008) inside their own statement (one round trip each, see CLAIM_SQL); every other
status change of a job, here as anywhere, goes through `jobs.services.job_transition`, except
the one-statement completion of step 3, which has no credit meaning either (the job is charged
and has no failed unit to refund) and announces the finish itself (`job_finished_notify`).
"""

import json
import logging
import random
import threading
import time
from datetime import timedelta

import psycopg
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import DurationField, ExpressionWrapper, F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User, UserPreferences
from jobs.models import Job, JobKind
from jobs.notifications import job_finished_notify
from jobs.processors import JobContext, PermanentJobError, get_processor
from jobs.services import job_outputs_store, job_transition, job_transition_in_atomic
from jobs.states import RUNNING, TERMINAL, JobStatus
from jobs.wakeup import enqueue_wakeup

logger = logging.getLogger(__name__)
S = JobStatus

# Table and status names come from the model and the status enum, never literals.
_SQL_NAMES = {
    "job": Job._meta.db_table,
    "preparing": S.PREPARING.value,
    "processing": S.PROCESSING.value,
    "queued": S.QUEUED.value,
    "retrying": S.RETRYING.value,
}

# The claim and the start each authorise themselves inside their own statement: the one-row
# `auth` CTE joined into the UPDATE is evaluated before the join yields the first row to update
# (whatever the join order), so before the status guard's BEFORE UPDATE trigger runs; and
# set_config(…, true) lasts until the end of the transaction, which in autocommit is this
# statement. One round trip each instead of BEGIN, set_config, UPDATE, COMMIT.
CLAIM_SQL = """
WITH auth AS MATERIALIZED (SELECT set_config('jobs.transition', '*', true) AS granted)
UPDATE {job} AS j
   SET status = '{preparing}', attempts = j.attempts + 1, heartbeat_at = now(),
       next_attempt_at = NULL, updated_at = now()
  FROM auth
 WHERE j.id IN (
        SELECT id FROM {job}
         WHERE status IN ('{queued}', '{retrying}') AND runs_on_engine
           AND (next_attempt_at IS NULL OR next_attempt_at <= now())
         ORDER BY priority DESC, queued_at ASC
         LIMIT %s
           FOR UPDATE SKIP LOCKED)
RETURNING j.id, j.attempts, j.priority, j.queued_at
""".format(**_SQL_NAMES)

# The job's and its kind's columns, in model field order, for the start's RETURNING.
_JOB_FIELDS = [f.attname for f in Job._meta.concrete_fields]
_KIND_FIELDS = [f.attname for f in JobKind._meta.concrete_fields]
# The start also commits without waiting for the WAL flush (synchronous_commit off for its own
# transaction): should the database crash before a later commit flushes it, the job is found
# `preparing` again, this attempt's completion fails its lease check (it needs `processing`) and
# the rescue retries the job; nothing with a money or terminal meaning is ever written this way.
# It halves the flushes waited for per job (bench/jobs_throughput.py). The claim stays
# synchronous: a claim lost in a crash would let a second worker take the same attempt number.
# Inside a caller's transaction (tests) the start leaves that transaction's durability alone.
_START_TEMPLATE = """
WITH auth AS MATERIALIZED (SELECT set_config('jobs.transition', '*', true) AS granted{no_flush_wait})
UPDATE {job} AS j SET status = '{processing}', started_at = COALESCE(j.started_at, clock_timestamp()),
       attempt_started_at = clock_timestamp(), heartbeat_at = now(), updated_at = now()
  FROM auth, {kind} AS k
 WHERE j.id = %s AND j.attempts = %s AND j.status = '{preparing}' AND k.id = j.kind_id
RETURNING {columns}
"""
_START_NAMES = {
    "kind": JobKind._meta.db_table,
    "columns": ", ".join(
        [f'j."{Job._meta.get_field(n).column}"' for n in _JOB_FIELDS]
        + [f'k."{JobKind._meta.get_field(n).column}"' for n in _KIND_FIELDS]
    ),
    **_SQL_NAMES,
}
START_SQL = _START_TEMPLATE.format(
    no_flush_wait=", set_config('synchronous_commit', 'off', true) AS no_flush_wait", **_START_NAMES
)
START_SQL_IN_TRANSACTION = _START_TEMPLATE.format(no_flush_wait="", **_START_NAMES)


class _PreparedCursor(psycopg.Cursor):
    """Server-side binding, each statement prepared on its connection the first time it runs
    (psycopg keeps the most recent `prepared_max` of them; Django turns automatic preparing off)."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)


def _autocommit_statement(sql: str, params) -> list[tuple]:
    """Run one of the engine's statements and return its rows: its own transaction in
    autocommit (the engine), part of the caller's when there is one (the set_config then lasts
    until that one ends).

    Through a preparing psycopg cursor on Django's connection (wrapped like any Django cursor:
    query logging, execute wrappers, error translation), so each of these few statements is
    prepared once per connection and PostgreSQL stops parsing and planning it for every job:
    0.3 ms less database time per statement (bench/jobs_throughput.py). Django's own cursors
    bind client-side, which never prepares. A pooler in front of PostgreSQL must keep prepared
    statements per session (PgBouncer: session pooling, or `max_prepared_statements`).
    """
    connection.ensure_connection()
    raw = _PreparedCursor(connection.connection)
    cursor = connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
    with cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if connection.queries_logged and connection.queries_log[-1]["sql"] is None:
        # Django renders only client-bound statements for its query log; log the text as sent.
        connection.queries_log[-1]["sql"] = sql
    return rows


def jobs_claim(*, limit: int = 1) -> list[tuple]:
    """Claim up to `limit` due engine jobs, highest priority then oldest first.

    One statement, its own transaction; SKIP LOCKED makes concurrent claimers take disjoint
    jobs without waiting. Returns [(job_id, attempt)] in the order they must run.
    """
    rows = _autocommit_statement(CLAIM_SQL, [limit])
    rows.sort(key=lambda r: (-r[2], r[3]))
    return [(r[0], r[1]) for r in rows]


def _job_start(job_id, attempt: int) -> Job | None:
    """`preparing → processing` if this attempt still owns the job, in one statement that also
    returns the job with its kind; None when the attempt lost the job."""
    in_transaction = connection.in_atomic_block or not connection.get_autocommit()
    sql = START_SQL_IN_TRANSACTION if in_transaction else START_SQL
    rows = _autocommit_statement(sql, [job_id, attempt])
    if not rows:
        return None
    values = rows[0]
    job = _from_row(Job, _JOB_FIELDS, values[: len(_JOB_FIELDS)])
    job.kind = _from_row(JobKind, _KIND_FIELDS, values[len(_JOB_FIELDS) :])
    return job


def _from_row(model, attnames: list[str], values) -> object:
    """A model instance from raw column values, through each field's from_db_value (JSON)."""
    fields = [model._meta.get_field(name) for name in attnames]
    converted = [
        field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
        for field, value in zip(fields, values, strict=True)
    ]
    return model.from_db(connection.alias, attnames, converted)


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter: base × 2^(attempts-1), capped, scaled by U(0.5, 1.0) so
    jobs that failed together do not come back together."""
    base = float(settings.JOBS_RETRY_BASE_SECONDS)
    cap = float(settings.JOBS_RETRY_MAX_SECONDS)
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
        interval = float(settings.JOBS_HEARTBEAT_SECONDS)
        try:
            while not self._stop.wait(interval):
                with self._lock:
                    held = list(self.held.items())
                for job_id, attempt in held:
                    Job.objects.filter(
                        pk=job_id, attempts=attempt, status__in=(S.PREPARING, S.PROCESSING, S.FINALIZING)
                    ).update(heartbeat_at=timezone.now())
        except Exception:
            logger.exception("Heartbeat thread stopped; the rescue will treat these jobs as lost.")
        finally:
            connection.close()


def _owned(job_id, attempt) -> Job | None:
    """The job locked, if this attempt still owns it (it is running and nobody re-claimed it)."""
    job = (
        Job.objects.select_for_update(of=("self",))
        .select_related("kind", "user")
        .filter(pk=job_id, attempts=attempt, status__in=(S.PREPARING, S.PROCESSING, S.FINALIZING))
        .first()
    )
    return job


def _completion_fields(job: Job, outcome: dict) -> dict:
    failed = int(outcome.get("failed_count", 0))
    successful = int(outcome.get("successful_count", job.requested_count - failed))
    fields = {"error": ""}
    fields["failed_count"] = max(job.failed_count, min(failed, job.requested_count))
    fields["successful_count"] = max(
        job.successful_count, min(successful, job.requested_count - fields["failed_count"])
    )
    if "result" in outcome:
        fields["result"] = outcome["result"]
    return fields


# The completion of an attempt with no money effect in one statement: `processing|finalizing →
# completed` under the lease check, only for a job already charged and with no failed unit
# (then job_transition's signal would neither charge nor refund nor free a slot). It returns
# what the finish notification needs: the owner and their notification preferences.
COMPLETE_SQL = """
WITH auth AS MATERIALIZED (SELECT set_config('jobs.transition', '*', true) AS granted)
UPDATE {job} AS j
   SET status = '{completed}', progress = 100, error = '', successful_count = %(successful)s,
       failed_count = 0, result = COALESCE(%(result)s::jsonb, j.result), completed_at = %(now)s,
       updated_at = %(now)s
  FROM auth, {user} AS u
 WHERE j.id = %(id)s AND j.attempts = %(attempt)s AND j.status IN ('{processing}', '{finalizing}')
   AND j.charged AND j.failed_count = 0 AND u.id = j.user_id
RETURNING u.id, u.email, u.name, u.is_active, u.deleted_at,
          (SELECT p.notifications FROM {preferences} AS p WHERE p.user_id = j.user_id)
""".format(
    user=User._meta.db_table,
    preferences=UserPreferences._meta.db_table,
    completed=S.COMPLETED.value,
    finalizing=S.FINALIZING.value,
    **_SQL_NAMES,
)


def _complete_in_one_statement(job: Job, attempt: int, fields: dict) -> bool:
    """COMPLETE_SQL for `job` (as started by this attempt); False when it does not apply (the
    lease was lost, or the job has a money effect to settle): the caller takes the general path."""
    now = timezone.now()
    result = fields.get("result")
    rows = _autocommit_statement(
        COMPLETE_SQL,
        {
            "id": job.pk,
            "attempt": attempt,
            "successful": fields["successful_count"],
            "result": None if "result" not in fields else json.dumps(result, cls=DjangoJSONEncoder),
            "now": now,
        },
    )
    if not rows:
        return False
    user_id, email, name, is_active, deleted_at, notifications = rows[0]
    job.user = User.from_db(
        connection.alias,
        ["id", "email", "name", "is_active", "deleted_at"],
        [user_id, email, name, is_active, deleted_at],
    )
    notifications = UserPreferences._meta.get_field("notifications").from_db_value(
        notifications, None, connection
    )
    for name_, value in fields.items():
        setattr(job, name_, value)
    job.status, job.progress, job.completed_at = S.COMPLETED, 100, now
    job_finished_notify(job=job, notifications=notifications or {})
    return True


def job_attempt_succeeded(
    *, job_id, attempt: int, outcome: dict | None, ctx: JobContext | None, job: Job | None = None
) -> bool:
    """Complete the attempt: outputs, artifacts, counts and `completed`, atomically.

    `job`: the instance this attempt started (`_job_start`); when the completion has no money
    effect and nothing to store, it is one statement (COMPLETE_SQL). Otherwise one transaction
    that locks the job row. Does nothing (returns False) if this attempt no longer owns the job.
    """
    outcome = outcome or {}
    if (
        job is not None
        and job.charged
        and job.failed_count == 0
        and not (ctx is not None and (ctx.outputs or ctx.artifacts))
    ):
        fields = _completion_fields(job, outcome)
        simple = fields["failed_count"] == 0 and fields.get("result", {}) is not None
        if simple and _complete_in_one_statement(job, attempt, fields):
            return True
    return _attempt_succeeded_locked(job_id=job_id, attempt=attempt, outcome=outcome, ctx=ctx)


@transaction.atomic
def _attempt_succeeded_locked(*, job_id, attempt: int, outcome: dict, ctx: JobContext | None) -> bool:
    job = _owned(job_id, attempt)
    if job is None:
        return False
    fields = _completion_fields(job, outcome)
    # The row is locked and current (_owned): no savepoint, no second lock.
    job = job_transition_in_atomic(job=job, to=S.COMPLETED, fields=fields, locked=True)
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
    error = str(error)[:10_000]
    if permanent or job.attempts > job.max_retries:
        return job_transition_in_atomic(job=job, to=S.FAILED, fields={"error": error}, locked=True).status
    delay = retry_delay(job.attempts)
    job = job_transition_in_atomic(
        job=job,
        to=S.RETRYING,
        fields={"error": error, "next_attempt_at": timezone.now() + timedelta(seconds=delay)},
        locked=True,
    )
    enqueue_wakeup(countdown=delay)
    return job.status


def job_run(*, job_id, attempt: int, heartbeat: Heartbeat | None = None) -> str:
    """Run one claimed attempt to its end. Never raises for a processor error."""
    job = _job_start(job_id, attempt)
    if job is None:
        return "lost"
    processor = get_processor(job.kind.code)
    if processor is None:
        job_attempt_failed(
            job_id=job_id,
            attempt=attempt,
            permanent=True,
            error=f"No processor is registered for kind {job.kind.code}.",
        )
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
    ok = job_attempt_succeeded(job_id=job_id, attempt=attempt, outcome=outcome, ctx=ctx, job=job)
    return "completed" if ok else "lost"


def claim_size(*, seconds_per_job: float) -> int:
    """How many jobs a worker claims next: as many as it is expected to finish within
    JOBS_CLAIM_WINDOW_SECONDS, judging by its last batch, between 1 and JOBS_CLAIM_BATCH_MAX.

    Short jobs are then claimed many per round trip, and long ones one at a time: a claimed job
    waits for the ones before it in its worker's batch (while another worker might be idle), and
    a job of higher priority queued meanwhile waits for the batch; both waits stay about one
    window long.
    """
    most = max(1, settings.JOBS_CLAIM_BATCH_MAX)
    if seconds_per_job <= 0:
        return most
    return max(1, min(most, int(settings.JOBS_CLAIM_WINDOW_SECONDS / seconds_per_job)))


def jobs_drain(*, budget_seconds: float | None = None, batch: int | None = None) -> int:
    """Claim and run due jobs until none is left or the time budget is spent; returns how many
    attempts ran. If the budget ran out with work left, another wake-up is sent. The first
    claim takes `batch` (JOBS_CLAIM_BATCH) jobs, the later ones `claim_size`."""
    budget = float(settings.JOBS_DRAIN_SECONDS if budget_seconds is None else budget_seconds)
    size = int(settings.JOBS_CLAIM_BATCH if batch is None else batch)
    deadline = time.monotonic() + budget
    ran = 0
    with Heartbeat() as heartbeat:
        while time.monotonic() < deadline:
            claimed = jobs_claim(limit=size)
            if not claimed:
                return ran
            for job_id, attempt in claimed:
                heartbeat.hold(job_id, attempt)
            started = time.monotonic()
            for job_id, attempt in claimed:
                job_run(job_id=job_id, attempt=attempt, heartbeat=heartbeat)
                ran += 1
            size = claim_size(seconds_per_job=(time.monotonic() - started) / len(claimed))
    enqueue_wakeup()
    return ran


def jobs_rescue_stale(*, now=None, limit: int = 500) -> dict:
    """Beat, every minute.

    Engine jobs whose worker stopped heartbeating, or whose attempt has run longer than its
    kind's timeout, are treated as a failed attempt (`retrying`, or `failed` and refunded after
    the last retry); a worker still running a timed-out attempt can no longer write its result
    (the lease check refuses it). Jobs run elsewhere (`worker`/`client` kinds) with no report
    for longer than their kind's timeout (last report = heartbeat_at, else when queued or
    created) are failed and refunded, exactly like an engine job. Nothing is ever charged here:
    the charge happened once, when the job entered `queued`. Also re-announces due claimable
    jobs, in case their wake-up message was lost. Each job in its own transaction, locked with
    SKIP LOCKED and re-checked, so it is safe to run concurrently and twice."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=float(settings.JOBS_STALE_AFTER_SECONDS))
    kind_timeout = ExpressionWrapper(F("kind__timeout") * timedelta(seconds=1), output_field=DurationField())
    timed_out = Q(attempt_started_at__lt=now - kind_timeout)
    lost = Q(heartbeat_at__lt=stale_before) | timed_out
    running = Job.objects.filter(status__in=RUNNING, runs_on_engine=True)
    candidates = list(running.filter(lost).values_list("pk", "attempts")[:limit])
    rescued = 0
    for job_id, attempt in candidates:
        with transaction.atomic():
            job = (
                running.select_for_update(skip_locked=True, of=("self",))
                .filter(lost, pk=job_id, attempts=attempt)
                .first()
            )
            if job is None:
                continue
            stale = job.heartbeat_at is None or job.heartbeat_at < stale_before
            error = (
                "The worker stopped responding (stale heartbeat)."
                if stale
                else f"The attempt ran longer than the {job.kind.timeout} s timeout."
            )
            status = job_attempt_failed(job_id=job_id, attempt=attempt, error=error)
            if status == S.RETRYING and stale:
                # Due at once: the backoff is for processor errors, not for a worker that died.
                Job.objects.filter(pk=job_id).update(next_attempt_at=now)
            rescued += 1
    silent = jobs_fail_silent_external(now=now, limit=limit)
    due = (
        Job.objects.filter(status__in=(S.QUEUED, S.RETRYING), runs_on_engine=True)
        .exclude(next_attempt_at__gt=now)
        .count()
    )
    if due:
        with transaction.atomic():
            for _ in range(min(due, 4)):
                enqueue_wakeup()
    return {"rescued": rescued, "silent_failed": silent, "due": due}


def jobs_fail_silent_external(*, now=None, limit: int = 500) -> int:
    """Fail (and refund, through job_transition) jobs run elsewhere that have sent no report
    for longer than their kind's timeout. Returns how many were failed."""
    now = now or timezone.now()
    kind_timeout = ExpressionWrapper(F("kind__timeout") * timedelta(seconds=1), output_field=DurationField())
    # Same predicate as the partial index job_external_open, so the scan stays on open jobs.
    open_external = Job.objects.filter(
        runs_on_engine=False, status__in=sorted(set(S.values) - TERMINAL)
    ).alias(last_report=Coalesce("heartbeat_at", "queued_at", "created_at"))
    silent = Q(last_report__lt=now - kind_timeout)
    failed = 0
    for job_id in list(open_external.filter(silent).values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            job = (
                open_external.select_for_update(skip_locked=True, of=("self",))
                .filter(silent, pk=job_id)
                .select_related("kind")
                .first()
            )
            if job is None:
                continue
            job_transition(
                job=job,
                to=S.FAILED,
                now=now,
                fields={
                    "failed_count": job.requested_count - job.successful_count,
                    "error": f"No report from the worker for longer than the {job.kind.timeout} s timeout.",
                },
            )
            failed += 1
    return failed
