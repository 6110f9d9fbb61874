"""The one way a job's status changes (docs/ARCHITECTURE.md, step 2)."""

from django.db import connection, transaction
from django.utils import timezone

from config.exceptions import InvalidTransition, NotFound
from config.metrics import JOBS_FINISHED
from jobs.models import Job
from jobs.notifications import job_finished_notify
from jobs.states import TERMINAL, JobStatus, can_transition

S = JobStatus
# A job is born `pending` (reported by its client) or `queued` (created and charged at once).
INITIAL = frozenset({S.PENDING, S.QUEUED})


def authorise_sql(ids: str) -> str:
    """A SQL expression adding the job ids `ids` evaluates to (text, comma-separated; NULL adds
    none) to this transaction's authorised status writes. The status guard (jobs migration
    0012) lets each of them through once, for its one write, and refuses every other. The
    engine's statements embed it, fed by exactly the rows they lock, so the authorisation and
    the write are one statement."""
    return (
        "set_config('jobs.transition', concat_ws(',', "
        f"nullif(current_setting('jobs.transition', true), ''), {ids}), true)"
    )


AUTHORISE_SQL = f"SELECT {authorise_sql('%s')}"


def job_lock(*, job_id) -> Job:
    """The job row, locked FOR UPDATE until the end of the caller's transaction (NotFound if gone)."""
    job = Job.objects.select_for_update(of=("self",)).select_related("kind", "user").filter(pk=job_id).first()
    if job is None:
        raise NotFound("Job not found.")
    return job


def _authorise(job_id) -> None:
    """Let this transaction change this one job's status once (the trigger of migration 0012
    refuses every other status write, and consumes the authorisation)."""
    with connection.cursor() as cursor:
        cursor.execute(AUTHORISE_SQL, [str(job_id)])


@transaction.atomic
def job_transition(*, job: Job, to: str, fields: dict | None = None, now=None) -> Job:
    """Move `job` to status `to`, with the money effect of the move, atomically (in its own
    transaction, or a savepoint of the caller's): see `job_transition_in_atomic`."""
    return job_transition_in_atomic(job=job, to=to, fields=fields, now=now)


def job_transition_in_atomic(
    *, job: Job, to: str, fields: dict | None = None, now=None, locked: bool = False
) -> Job:
    """Move `job` to status `to`, with the money effect of the move, inside the caller's
    atomic block, without a savepoint of its own: for callers whose block holds nothing else
    that an error here should spare (job_create, the engine's completion); an error leaves
    the whole block to roll back. Refused outside an atomic block.

    `locked`: the caller already read `job` under its row lock in this transaction, with its
    kind and user (the engine's lease check); it is used as read instead of being locked again.

    - A new, unsaved job is inserted directly in `to` (`pending` or `queued`); an existing one
      is re-read under a row lock (FOR UPDATE) and `to` must be allowed by
      `jobs.states.TRANSITIONS`, else InvalidTransition (409).
    - `fields` are written in the same UPDATE (counts, result, error, next_attempt_at…).
    - Timestamps: `queued_at` and `started_at` the first time, `completed_at` (and progress 100
      for `completed`) when finishing.
    - The pre_save signal in `jobs.signals` charges on the first move past `queued` (402
      InsufficientCredits, then nothing persists), refunds on `failed`/`cancelled` and the failed
      units on `completed`, frees a model slot. This is the only code path that reaches it.
    Lock order: job row, then the credit balance row. Returns the saved job (a fresh instance
    for an existing job: the caller's instance is not updated).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("job_transition_in_atomic runs inside an atomic block.")
    now = now or timezone.now()
    if job._state.adding:
        if to not in INITIAL:
            raise InvalidTransition(f"A job is created pending or queued, not {to}.")
        current = job
    else:
        current = job if locked else job_lock(job_id=job.pk)
        if not can_transition(current.status, to):
            raise InvalidTransition(f"A {current.status} job cannot move to {to}.")
    for name, value in (fields or {}).items():
        setattr(current, name, value)
    current.status = to
    if to == S.QUEUED and current.queued_at is None:
        current.queued_at = now
    if to == S.PROCESSING and current.started_at is None:
        current.started_at = now
    if to in TERMINAL:
        current.completed_at = now
        if to == S.COMPLETED:
            current.progress = 100
    if not (current._state.adding and to == S.PENDING):  # a pending insert is not guarded
        _authorise(current.pk)
    current._transition_to = to
    try:
        current.save()
    finally:
        current._transition_to = None
    current._loaded_status = to
    if to in TERMINAL:
        transaction.on_commit(JOBS_FINISHED.labels(status=to).inc)
    if to in (S.COMPLETED, S.FAILED):
        job_finished_notify(job=current)
    return current
