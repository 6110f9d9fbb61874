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
3. success: output files are written to storage (no lock held), then one transaction records
   them with the artifacts, counts and `completed` (credits for failed units refunded by the
   signal); the files are removed if it does not commit — or, with nothing to store and no
   credit to move, a lease-checked statement: one for all such jobs of a claimed batch
   (`jobs_drain` defers them to its end, `BatchCompletions`, COMPLETE_BATCH_SQL; the heartbeat
   holds them meanwhile), one per job otherwise and for every job the batch's statement did
   not complete (COMPLETE_SQL). Failure: `retrying` with
   exponential backoff and jitter while attempts ≤ max_retries, else `failed` (the signal
   refunds the charge). A completion that fails (database, storage) is a failed attempt of
   that job alone (`job_run` never raises): the rest of the batch runs on, and a finish email
   that cannot be queued is logged, never raised.
Claims, heartbeats and progress bypass `save()` on purpose: they must stay single cheap
statements. The status moves among the engine's statements (claim: → preparing, start:
→ processing, and the completions with no credit effect, one job or a batch: → completed) are
generated from the transition table (`_move_sql`: the source statuses come from `jobs.states.sources_of`) and
authorise exactly the jobs they lock and move to the status guard (jobs migration 0012), in the
same statement. The completion takes that path only when `jobs.signals.COMPLETION_WITHOUT_CREDITS`
says completing moves no credit — the rule the credit signal follows — and announces the finish
itself (`job_finished_notify`); every other status change of a job, here as anywhere, goes
through `jobs.services.job_transition`.
"""

import json
import logging
import random
import statistics
import threading
import time
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import DurationField, ExpressionWrapper, F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User, UserPreferences
from config.failures import failure_report
from config.metrics import JOB_RUN, JOB_WAIT, JOBS_FINISHED
from jobs.models import Job, JobKind
from jobs.notifications import job_finished_notify
from jobs.processors import JobContext, PermanentJobError, get_processor
from jobs.services import (
    job_outputs_discard,
    job_outputs_record,
    job_outputs_write,
    job_transition,
    job_transition_in_atomic,
)
from jobs.services.transitions import authorise_sql
from jobs.signals import COMPLETION_WITHOUT_CREDITS, completion_moves_credits
from jobs.states import RUNNING, TERMINAL, JobStatus, sources_of
from jobs.wakeup import enqueue_wakeup

logger = logging.getLogger(__name__)
S = JobStatus

# Table and status names come from the model and the status enum, never literals.
JOB_TABLE = Job._meta.db_table


def _status_list(statuses) -> str:
    return ", ".join(f"'{status.value}'" for status in sorted(statuses))


def _move_sql(
    to: str,
    *,
    among,
    where: str,
    lock: str,
    sets: str,
    returning: str,
    joins: str = "",
    join_on: str = "",
    also: str = "",
    before: str = "",
) -> str:
    """One of the engine's set-based status moves, generated from the transition table.

    The jobs moved are those `where` selects (`lock`: ORDER BY, LIMIT, FOR UPDATE…) among the
    statuses the table lets move to `to` (`sources_of(to)`, narrowed to `among`, the statuses
    this step of the engine may hold). The `picked` CTE locks them; the one-row
    `auth` CTE adds exactly their ids to the transaction's authorised status writes
    (`authorise_sql`, consumed one by one by the status guard); the UPDATE moves exactly them.
    `auth` is an aggregate over `picked` joined into the UPDATE, so it has run before the join
    yields the first row to update (whatever the join order), hence before the guard's BEFORE
    UPDATE trigger; in autocommit the setting lasts this statement, and inside a caller's
    transaction nothing stays authorised after it (every id was consumed by its write).
    `also`: further expressions evaluated with the authorisation; `before`: CTEs ahead of
    `picked` (each ending with a comma) that `where` and `joins` may read.
    """
    sources = sources_of(to) & frozenset(among)
    if not sources:
        raise ValueError(f"The transition table allows no move from {sorted(among)} to {to}.")
    return f"""
WITH {before}picked AS MATERIALIZED (
    SELECT id FROM {JOB_TABLE} WHERE status IN ({_status_list(sources)}) AND {where}
    {lock}),
auth AS MATERIALIZED (SELECT {authorise_sql("string_agg(id::text, ',')")} AS granted{also} FROM picked)
UPDATE {JOB_TABLE} AS j
   SET status = '{S(to).value}', {sets}
  FROM auth, picked{joins}
 WHERE j.id = picked.id{join_on}
RETURNING {returning}
"""


# The claim: `queued|retrying → preparing`, attempts + 1 (the lease), for up to %s due jobs.
CLAIM_SQL = _move_sql(
    S.PREPARING,
    among=sources_of(S.PREPARING),
    where="runs_on_engine AND (next_attempt_at IS NULL OR next_attempt_at <= now())",
    lock="ORDER BY priority DESC, queued_at ASC LIMIT %s FOR UPDATE SKIP LOCKED",
    sets="attempts = j.attempts + 1, heartbeat_at = now(), next_attempt_at = NULL, updated_at = now()",
    returning="j.id, j.attempts, j.priority, j.queued_at",
)

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


def _start_sql(*, also: str) -> str:
    """`preparing → processing` for job %s if attempt %s still holds it, returning the job and
    its kind."""
    kind = JobKind._meta.db_table
    return _move_sql(
        S.PROCESSING,
        among=RUNNING,
        where="id = %s AND attempts = %s",
        lock="FOR UPDATE",
        sets="""started_at = COALESCE(j.started_at, clock_timestamp()),
       attempt_started_at = clock_timestamp(), heartbeat_at = now(), updated_at = now()""",
        joins=f", {kind} AS k",
        join_on=" AND k.id = j.kind_id",
        returning=", ".join(
            [f'j."{Job._meta.get_field(n).column}"' for n in _JOB_FIELDS]
            + [f'k."{JobKind._meta.get_field(n).column}"' for n in _KIND_FIELDS]
        ),
        also=also,
    )


START_SQL = _start_sql(also=", set_config('synchronous_commit', 'off', true) AS no_flush_wait")
START_SQL_IN_TRANSACTION = _start_sql(also="")


def _db():
    """The engine's connection: `default`, or the `engine` alias (the same database, with
    prepared statements) when DATABASE_PREPARED_STATEMENTS is on (config/settings/base.py)."""
    return connections[settings.JOBS_DATABASE]


def _statement(sql: str, params) -> list[tuple]:
    """Run one of the engine's statements through a plain Django cursor on the engine's
    connection and return its rows: its own transaction in autocommit (the engine), part of the
    caller's when there is one."""
    with _db().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def jobs_claim(*, limit: int = 1) -> list[tuple]:
    """Claim up to `limit` due engine jobs, highest priority then oldest first.

    One statement, its own transaction; SKIP LOCKED makes concurrent claimers take disjoint
    jobs without waiting. Returns [(job_id, attempt)] in the order they must run.
    """
    rows = _statement(CLAIM_SQL, [limit])
    rows.sort(key=lambda r: (-r[2], r[3]))
    return [(r[0], r[1]) for r in rows]


def _job_start(job_id, attempt: int) -> Job | None:
    """`preparing → processing` if this attempt still owns the job, in one statement that also
    returns the job with its kind; None when the attempt lost the job."""
    db = _db()
    in_transaction = db.in_atomic_block or not db.get_autocommit()
    sql = START_SQL_IN_TRANSACTION if in_transaction else START_SQL
    rows = _statement(sql, [job_id, attempt])
    if not rows:
        return None
    values = list(rows[0])
    for index, field in _START_CONVERTERS:
        values[index] = field.from_db_value(values[index], None, db)
    job = Job.from_db(DEFAULT_DB_ALIAS, _JOB_FIELDS, values[: len(_JOB_FIELDS)])
    job.kind = JobKind.from_db(DEFAULT_DB_ALIAS, _KIND_FIELDS, values[len(_JOB_FIELDS) :])
    if attempt == 1 and job.queued_at is not None and job.attempt_started_at is not None:
        JOB_WAIT.labels(kind=job.kind.code).observe(
            max(0.0, (job.attempt_started_at - job.queued_at).total_seconds())
        )
    return job


# The start's returned columns that need their field's from_db_value (JSON), found once: the
# instances are built from raw column values with Model.from_db. They belong to the default
# alias whichever connection read them, so their related queries and saves go where the rest
# of the app's do.
_START_CONVERTERS = [
    (index, field)
    for index, field in enumerate(
        [Job._meta.get_field(name) for name in _JOB_FIELDS]
        + [JobKind._meta.get_field(name) for name in _KIND_FIELDS]
    )
    if hasattr(field, "from_db_value")
]


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


# What the engine's one-statement completions return for the finish notification: the owner
# and their notification preferences.
_OWNER_RETURNING = f"""u.id, u.email, u.name, u.is_active, u.deleted_at,
          (SELECT p.notifications FROM {UserPreferences._meta.db_table} AS p WHERE p.user_id = j.user_id)"""
# Completing moves no credit while the job's columns say so (jobs.signals.COMPLETION_WITHOUT_CREDITS,
# the rule the credit signal follows too); the completions below write failed_count = 0 and keep
# `charged`, so it stays true.
_WITHOUT_CREDITS_WHERE = [
    f'"{Job._meta.get_field(name).column}" = %(without_credits_{name})s'
    for name in COMPLETION_WITHOUT_CREDITS
]
_WITHOUT_CREDITS_PARAMS = {
    f"without_credits_{name}": value for name, value in COMPLETION_WITHOUT_CREDITS.items()
}

# The completion of an attempt with no money effect in one statement: `processing|finalizing →
# completed` under the lease check, only while completing it moves no credit.
COMPLETE_SQL = _move_sql(
    S.COMPLETED,
    among=RUNNING,
    where=" AND ".join(["id = %(id)s AND attempts = %(attempt)s", *_WITHOUT_CREDITS_WHERE]),
    lock="FOR UPDATE",
    sets="""progress = 100, error = '', successful_count = %(successful)s, failed_count = 0,
       result = COALESCE(%(result)s::jsonb, j.result), completed_at = %(now)s, updated_at = %(now)s""",
    joins=f", {User._meta.db_table} AS u",
    join_on=" AND u.id = j.user_id",
    returning=_OWNER_RETURNING,
)

# The same completion for the jobs of a claimed batch at once (`jobs_drain` defers them,
# `BatchCompletions`): `done` has one row per job — its id, the attempt that ran it (its lease),
# its successful count, its result (NULL keeps the stored one) and its own finish time
# (completed_at). Each job moves only if its own lease still holds and it still moves no credit,
# so a job whose lease was lost meanwhile (the rescue, a cancel) is left as it is; a job whose
# row another transaction holds is skipped, not waited for (SKIP LOCKED: a statement locking
# several job rows never waits, docs/ARCHITECTURE.md "Lock order"), and left, like the others
# the statement did not complete, to the per-job completion. RETURNING names the jobs
# completed, with what their notification needs.
COMPLETE_BATCH_SQL = _move_sql(
    S.COMPLETED,
    among=RUNNING,
    before="""done AS MATERIALIZED (
    SELECT * FROM unnest(%(ids)s::uuid[], %(attempts)s::integer[], %(successful)s::integer[],
                         %(results)s::jsonb[], %(finished)s::timestamptz[])
        AS d (id, attempt, successful, result, finished_at)),
""",
    where=" AND ".join(
        ["(id, attempts) IN (SELECT d.id, d.attempt FROM done AS d)", *_WITHOUT_CREDITS_WHERE]
    ),
    lock="FOR UPDATE SKIP LOCKED",
    sets="""progress = 100, error = '', successful_count = d.successful, failed_count = 0,
       result = COALESCE(d.result, j.result), completed_at = d.finished_at, updated_at = now()""",
    joins=f", done AS d, {User._meta.db_table} AS u",
    join_on=" AND d.id = j.id AND u.id = j.user_id",
    returning=f"j.id, {_OWNER_RETURNING}",
)


def _result_param(fields: dict) -> str | None:
    """The completion's result as JSON text, or None to keep the stored one."""
    return None if "result" not in fields else json.dumps(fields["result"], cls=DjangoJSONEncoder)


def _announce(job: Job, owner_row, completed_at) -> None:
    """Announce `job`, just completed at `completed_at` by a one-statement completion, from the
    owner columns the statement returned (`_OWNER_RETURNING`). Queuing the email never raises."""
    user_id, email, name, is_active, deleted_at, notifications = owner_row
    job.user = User.from_db(
        DEFAULT_DB_ALIAS,
        ["id", "email", "name", "is_active", "deleted_at"],
        [user_id, email, name, is_active, deleted_at],
    )
    notifications = UserPreferences._meta.get_field("notifications").from_db_value(notifications, None, _db())
    job.status, job.progress, job.completed_at = S.COMPLETED, 100, completed_at
    transaction.on_commit(JOBS_FINISHED.labels(status=S.COMPLETED).inc, using=settings.JOBS_DATABASE)
    job_finished_notify(job=job, notifications=notifications or {})


def _complete_in_one_statement(job: Job, attempt: int, fields: dict, *, now=None) -> bool:
    """COMPLETE_SQL for `job` (as started by this attempt), completed at `now` (default: now);
    False when it does not apply (the lease was lost, or the job has a money effect to settle):
    the caller takes the general path."""
    now = now or timezone.now()
    rows = _statement(
        COMPLETE_SQL,
        {
            "id": job.pk,
            "attempt": attempt,
            "successful": fields["successful_count"],
            "result": _result_param(fields),
            "now": now,
            **_WITHOUT_CREDITS_PARAMS,
        },
    )
    if not rows:
        return False
    _announce(job, rows[0], now)
    return True


def _credit_neutral_fields(job: Job | None, outcome: dict, ctx: JobContext | None) -> dict | None:
    """The completion's fields, set on `job` (the instance this attempt started), when the
    completion can be one statement: nothing to store, no credit to move, and a result that is
    not None (the locked path writes a None result as such, the statements keep the old one).
    None otherwise."""
    if job is None or (ctx is not None and (ctx.outputs or ctx.artifacts)):
        return None
    fields = _completion_fields(job, outcome)
    for name, value in fields.items():
        setattr(job, name, value)
    if completion_moves_credits(job) or fields.get("result", {}) is None:
        return None
    return fields


def job_attempt_succeeded(
    *, job_id, attempt: int, outcome: dict | None, ctx: JobContext | None, job: Job | None = None, now=None
) -> bool:
    """Complete the attempt: outputs, artifacts, counts and `completed`, atomically.

    `job`: the instance this attempt started (`_job_start`); when the completion has no money
    effect and nothing to store, it is one statement (COMPLETE_SQL). Otherwise one transaction
    that locks the job row. `now`: the completion time (default: now). Does nothing (returns
    False) if this attempt no longer owns the job.
    """
    outcome = outcome or {}
    fields = _credit_neutral_fields(job, outcome, ctx)
    if fields is not None and _complete_in_one_statement(job, attempt, fields, now=now):
        return True
    return _attempt_succeeded_locked(job_id=job_id, attempt=attempt, outcome=outcome, ctx=ctx, now=now)


def _attempt_succeeded_locked(
    *, job_id, attempt: int, outcome: dict, ctx: JobContext | None, now=None
) -> bool:
    """The completion that locks the job row: output files are written to storage first, with
    no lock held, and removed again unless the transaction recording them commits (a lost
    lease, or any error inside it). The engine calls it in autocommit, where leaving the block
    is the commit."""
    written = job_outputs_write(job=ctx.job, outputs=ctx.outputs) if ctx is not None and ctx.outputs else []
    committed = False
    try:
        with transaction.atomic():
            job = _owned(job_id, attempt)
            if job is None:
                return False
            fields = _completion_fields(job, outcome)
            # The row is locked and current (_owned): no savepoint, no second lock.
            job = job_transition_in_atomic(job=job, to=S.COMPLETED, fields=fields, now=now, locked=True)
            if written or (ctx is not None and ctx.artifacts):
                job_outputs_record(job=job, files=written, artifacts=ctx.artifacts)
        committed = True
        return True
    finally:
        if written and not committed:
            job_outputs_discard(files=written)


class _Deferred(NamedTuple):
    job: Job
    attempt: int
    outcome: dict
    fields: dict
    finished_at: datetime  # completed_at
    since: float  # time.monotonic() when it was deferred


class BatchCompletions:
    """The credit-neutral completions of a claimed batch, acknowledged together.

    `jobs_drain` runs each job of its batch (its start included) on its own and, instead of
    completing one that needs nothing stored and moves no credit, adds it here; `flush` then
    completes all of them in one statement (COMPLETE_BATCH_SQL), each at its own finish time
    and under its own lease check. A job the statement does not complete (its lease was lost,
    or its columns changed), and every job if the statement raises, goes through the per-job
    completion (`job_attempt_succeeded`, with its own failure handling), which completes it or
    finds it lost. The heartbeat keeps holding each job until its completion is written, so
    the rescue does not take a finished job for a dead one.
    """

    def __init__(self, heartbeat: Heartbeat | None = None):
        self.heartbeat = heartbeat
        self.pending: list[_Deferred] = []

    def add(self, *, job: Job, attempt: int, outcome: dict, fields: dict) -> None:
        self.pending.append(_Deferred(job, attempt, outcome, fields, timezone.now(), time.monotonic()))

    def waited(self) -> float:
        """Seconds the oldest pending completion has waited (0 with none)."""
        return time.monotonic() - self.pending[0].since if self.pending else 0.0

    def flush(self) -> None:
        """Write every pending completion: one statement, then the per-job path for the rest.
        Never raises."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        try:
            completed = _complete_batch(pending)
        except Exception:
            logger.exception(
                "The batched completion of %s jobs failed; completing them one by one.", len(pending)
            )
            completed = set()
        for item in pending:
            try:
                if item.job.pk not in completed:
                    _complete_alone(item)
            finally:
                if self.heartbeat is not None:
                    self.heartbeat.release(item.job.pk)


def _complete_batch(pending: list[_Deferred]) -> set:
    """COMPLETE_BATCH_SQL for the `pending` completions; the ids of the jobs it completed, each
    announced. Inside a caller's transaction (tests) it runs in a savepoint, so that a failing
    statement leaves that transaction usable for the per-job path."""
    db = _db()
    params = {
        "ids": [item.job.pk for item in pending],
        "attempts": [item.attempt for item in pending],
        "successful": [item.fields["successful_count"] for item in pending],
        "results": [_result_param(item.fields) for item in pending],
        "finished": [item.finished_at for item in pending],
        **_WITHOUT_CREDITS_PARAMS,
    }
    with transaction.atomic(using=db.alias) if db.in_atomic_block else nullcontext():
        rows = _statement(COMPLETE_BATCH_SQL, params)
    by_id = {item.job.pk: item for item in pending}
    completed = set()
    for job_id, *owner_row in rows:
        item = by_id[job_id]
        completed.add(job_id)
        try:
            _announce(item.job, owner_row, item.finished_at)
        except Exception:
            logger.exception("Could not announce the completion of job %s", job_id)
    return completed


def _complete_alone(item: _Deferred) -> str:
    """The per-job completion of a deferred one, failing that job alone if it raises."""
    job_id, attempt = item.job.pk, item.attempt
    try:
        ok = job_attempt_succeeded(
            job_id=job_id, attempt=attempt, outcome=item.outcome, ctx=None, job=item.job, now=item.finished_at
        )
    except Exception as exc:
        return _record_failure(job_id, attempt, exc)
    return "completed" if ok else "lost"


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
        job = job_transition_in_atomic(job=job, to=S.FAILED, fields={"error": error}, locked=True)
        _report_failure(job, error, permanent=permanent)
        return job.status
    delay = retry_delay(job.attempts)
    job = job_transition_in_atomic(
        job=job,
        to=S.RETRYING,
        fields={"error": error, "next_attempt_at": timezone.now() + timedelta(seconds=delay)},
        locked=True,
    )
    if job.runs_on_engine:  # external workers find it by claiming (jobs.worker_protocol)
        enqueue_wakeup(countdown=delay)
    return job.status


# The error-log category of a failed engine job, by kind (any other kind: "job").
FAILURE_CATEGORY = {"model_import": "import", "model_export": "export"}


def _report_failure(job: Job, error: str, *, permanent: bool) -> None:
    """The job failed for good: one occurrence in the error log (config.failures), in the
    transaction that failed it."""
    code = JobKind.objects.filter(pk=job.kind_id).values_list("code", flat=True).first() or ""
    failure_report(
        category=FAILURE_CATEGORY.get(code, "job"),
        operation=code,
        step=f"attempt {job.attempts}",
        error_code="permanent_error" if permanent else "retries_exhausted",
        message=error.split(":", 1)[0][:200],
        user_id=job.user_id,
        job_id=job.pk,
        context={"error": error[:2000]},
    )


def _record_failure(job_id, attempt: int, exc: Exception) -> str:
    """An attempt that raised outside its processor (its completion: database, storage) ends as
    failed through `job_attempt_failed`; if even that cannot be written, the job is left to the
    rescue ("lost"). Never raises."""
    logger.exception("Job %s attempt %s could not be completed.", job_id, attempt, exc_info=exc)
    try:
        return (
            job_attempt_failed(job_id=job_id, attempt=attempt, error=f"{type(exc).__name__}: {exc}") or "lost"
        )
    except Exception:
        logger.exception(
            "Job %s attempt %s: the failure could not be recorded either; left to the rescue.",
            job_id,
            attempt,
        )
        return "lost"


def job_run(
    *, job_id, attempt: int, heartbeat: Heartbeat | None = None, completions: BatchCompletions | None = None
) -> str:
    """Run one claimed attempt to its end; never raises, so one job's failure stays that job's.

    A processor error, and equally a failing completion (a database error, a storage write),
    ends this attempt as failed through `job_attempt_failed` (`retrying`, or `failed` and
    refunded after the last one); only if even that cannot be written is the job left to the
    rescue. Either way the caller goes on with the next job of its batch.

    `completions`: a credit-neutral completion with nothing to store is added there instead of
    written ("deferred"; `jobs_drain` acknowledges them together), and the heartbeat keeps
    holding the job until then.
    """
    status = "lost"
    try:
        status = _job_run(job_id, attempt, completions)
        return status
    except Exception as exc:
        return _record_failure(job_id, attempt, exc)
    finally:
        if heartbeat is not None and status != "deferred":
            heartbeat.release(job_id)


def _job_run(job_id, attempt: int, completions: BatchCompletions | None = None) -> str:
    job = _job_start(job_id, attempt)
    if job is None:
        return "lost"
    started = time.perf_counter()
    outcome = _job_process(job, attempt, completions)
    # A deferred completion is written with its batch; it is counted as the completion it is.
    label = "completed" if outcome == "deferred" else outcome
    JOB_RUN.labels(kind=job.kind.code, outcome=label).observe(time.perf_counter() - started)
    return outcome


def _job_process(job: Job, attempt: int, completions: BatchCompletions | None) -> str:
    job_id = job.pk
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
    if completions is not None:
        fields = _credit_neutral_fields(job, outcome or {}, ctx)
        if fields is not None:
            completions.add(job=job, attempt=attempt, outcome=outcome or {}, fields=fields)
            return "deferred"
    ok = job_attempt_succeeded(job_id=job_id, attempt=attempt, outcome=outcome, ctx=ctx, job=job)
    return "completed" if ok else "lost"


# A batch below the floor (JOBS_CLAIM_BATCH) is claimed only for jobs that would overrun the
# window by more than this factor in a floor-sized batch: jobs long in themselves (seconds
# each), not short ones slowed down by a busy CPU, which a smaller claim would only slow further
# (more claim round trips for the same work).
LONG_JOBS_MARGIN = 4


def claim_size(*, seconds_per_job: float) -> int:
    """How many jobs a worker claims next, judging by its last batch (`seconds_per_job`, see
    `batch_seconds_per_job`): as many as it is expected to finish within
    JOBS_CLAIM_WINDOW_SECONDS, up to JOBS_CLAIM_BATCH_MAX, and never fewer than JOBS_CLAIM_BATCH
    unless a batch that size would take more than LONG_JOBS_MARGIN windows.

    Short jobs are then claimed many per round trip, and long ones one at a time: a claimed job
    waits for the ones before it in its worker's batch (while another worker might be idle), and
    a job of higher priority queued meanwhile waits for the batch; both waits stay about one
    window long for long jobs, and within a few windows for a floor-sized batch. Under CPU
    contention every job's wall time grows, but the claim never shrinks below the floor for it,
    so the adaptive size is never slower than the fixed JOBS_CLAIM_BATCH.
    """
    most = max(1, settings.JOBS_CLAIM_BATCH_MAX)
    floor = min(most, max(1, settings.JOBS_CLAIM_BATCH))
    window = float(settings.JOBS_CLAIM_WINDOW_SECONDS)
    if seconds_per_job <= 0:
        return most
    fits = int(window / seconds_per_job)
    if fits >= floor:
        return min(most, fits)
    if floor * seconds_per_job <= LONG_JOBS_MARGIN * window:
        return floor
    return max(1, fits)


def batch_seconds_per_job(durations: list[float]) -> float:
    """A batch's typical seconds per job, for `claim_size`: the median of its jobs' wall times,
    so one job delayed by a descheduled worker (or one slow job among short ones) does not
    shrink the next claim."""
    return statistics.median(durations) if durations else 0.0


def jobs_drain(*, budget_seconds: float | None = None, batch: int | None = None) -> int:
    """Claim and run due jobs until none is left or the time budget is spent; returns how many
    attempts ran. If the budget ran out with work left, another wake-up is sent. The first
    claim takes `batch` (JOBS_CLAIM_BATCH) jobs, the later ones `claim_size`. Each job of a
    batch runs on whatever happens to the others (`job_run` never raises). The credit-neutral
    completions of a batch are written together (`BatchCompletions`) at its end, or as soon
    as waiting for the next job would hold one past JOBS_CLAIM_WINDOW_SECONDS."""
    budget = float(settings.JOBS_DRAIN_SECONDS if budget_seconds is None else budget_seconds)
    size = int(settings.JOBS_CLAIM_BATCH if batch is None else batch)
    deadline = time.monotonic() + budget
    window = float(settings.JOBS_CLAIM_WINDOW_SECONDS)
    ran = 0
    with Heartbeat() as heartbeat:
        completions = BatchCompletions(heartbeat)
        while time.monotonic() < deadline:
            claimed = jobs_claim(limit=size)
            if not claimed:
                return ran
            for job_id, attempt in claimed:
                heartbeat.hold(job_id, attempt)
            durations = []
            for job_id, attempt in claimed:
                started = time.monotonic()
                job_run(job_id=job_id, attempt=attempt, heartbeat=heartbeat, completions=completions)
                elapsed = time.monotonic() - started
                durations.append(elapsed)
                ran += 1
                # Acknowledge now if waiting for one more job like this one would hold the
                # oldest finished job past a claim window (long jobs: each at once).
                if completions.waited() + elapsed > window:
                    completions.flush()
            completions.flush()
            size = claim_size(seconds_per_job=batch_seconds_per_job(durations))
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
    leases = jobs_expire_leases(now=now, limit=limit)
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
    return {"rescued": rescued, "leases_expired": leases, "silent_failed": silent, "due": due}


def jobs_expire_leases(*, now=None, limit: int = 500) -> int:
    """Jobs claimed by external workers (jobs.worker_protocol) whose lease expired: a failed
    attempt (`job_attempt_failed`: `retrying` with backoff while attempts remain, else `failed`
    and refunded). The attempt that held the lease can no longer write anything (409
    `lease_lost`). Each job in its own transaction, SKIP LOCKED and re-checked. Returns how many."""
    now = now or timezone.now()
    expired = Job.objects.filter(status__in=RUNNING, runs_on_engine=False, lease_expires_at__lt=now)
    done = 0
    for job_id, attempt in list(expired.values_list("pk", "attempts")[:limit]):
        with transaction.atomic():
            job = (
                expired.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=job_id, attempts=attempt)
                .first()
            )
            if job is None:
                continue
            job_attempt_failed(
                job_id=job_id, attempt=attempt, error="The worker's lease expired (no heartbeat in time)."
            )
            done += 1
    return done


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
