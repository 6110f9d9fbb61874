"""Creating, cancelling and retrying jobs."""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import License
from accounts.selectors import license_blocked, license_lapsed
from accounts.services import user_models_used_change
from config.exceptions import ApplicationError, Conflict, Forbidden, InvalidTransition
from jobs import file_services
from jobs.files import check_upload
from jobs.models import Job, JobFile, JobKind
from jobs.services.files import copy_input_file, store_file
from jobs.services.models3d import model_export_check, model_export_record
from jobs.services.transitions import job_lock, job_transition, job_transition_in_atomic
from jobs.states import JobStatus
from jobs.wakeup import enqueue_replicate_cancel, enqueue_replicate_start, enqueue_wakeup

S = JobStatus
MAX_REQUESTED_COUNT = 100_000
MODEL_EXPORT = "model_export"  # its options and source are checked and recorded (ModelExport)


class LicenseExpired(Forbidden):
    code = "license_expired"


class LicenseSuspended(Forbidden):
    code = "license_suspended"


class LicenseCancelled(Forbidden):
    code = "license_cancelled"


# One plain statement: on POST /api/jobs the ORM's compilation of this lookup cost more than
# the query itself (0.86 → 0.46 ms per call, bench/api_floor.py). `code` is unique.
KIND_BY_CODE_SQL = f"SELECT * FROM {JobKind._meta.db_table} WHERE code = %s AND is_active"


def job_kind_get(*, code: str) -> JobKind:
    kind = next(iter(JobKind.objects.raw(KIND_BY_CODE_SQL, [code])), None)
    if kind is None:
        raise ApplicationError(
            "Unknown job kind.",
            code="validation_error",
            fields={"kind": [f"Unknown or inactive job kind {code!r}."]},
        )
    return kind


def _duplicate_external_id() -> Conflict:
    return Conflict("You already have a job with this external_id.", code="duplicate_external_id")


@transaction.atomic
def job_create(
    *,
    user,
    kind_code: str,
    params: dict | None = None,
    requested_count: int = 1,
    priority: int = 0,
    external_id: str | None = None,
    input_file=None,
    retry_of: Job | None = None,
    input_job_file: JobFile | None = None,
) -> Job:
    """Create a job and queue it, charging credits_per_unit × requested_count (job_transition).

    Locks the user row (FOR NO KEY UPDATE) for an upload (storage quota) and when the kind
    counts toward the model limit (raises ModelLimitReached, 403; an ended trial without a live
    subscription raises LicenseExpired, 403 `license_expired`); a license staff suspended or
    cancelled refuses every new job (403 `license_suspended`, `license_cancelled`); the charge then locks the
    credit balance (InsufficientCredits, 402): the lock order user → balance. The new job's own
    row is not a lock anyone else can be waiting for; `retry_of`'s row is locked by the caller
    (job_retry) before all of these. On any error nothing
    persists: not the job, not the charge, not the model slot. An external_id the same user
    already used → 409 `duplicate_external_id` (another user's ids are invisible). A
    `model_export` job's options and source model are checked (400/404/409, see
    `model_export_check`) and recorded on its ModelExport row. Engine jobs are announced to the
    workers after commit; jobs of a kind mapped to Replicate (REPLICATE_KIND_VERSIONS) to the
    task that starts their prediction (jobs.replicate).
    """
    kind = job_kind_get(code=kind_code)
    blocked = license_blocked(user_id=user.pk)
    if blocked == License.Status.SUSPENDED:
        raise LicenseSuspended("Your license is suspended; contact support.")
    if blocked == License.Status.CANCELLED:
        raise LicenseCancelled("Your license is cancelled; contact support.")
    if kind.requires_input_file and input_file is None and input_job_file is None:
        raise ApplicationError(
            "This job kind needs an input file.",
            code="validation_error",
            fields={"input": ["This job kind needs an `input` file."]},
        )
    if input_file is not None:
        check_upload(input_file, role=JobFile.Role.INPUT, field="input")
        file_services.storage_quota_reserve(user_id=user.pk, size=input_file.size)
    if external_id and Job.objects.filter(user=user, external_id=external_id).exists():
        raise _duplicate_external_id()
    export = None
    if kind.code == MODEL_EXPORT:
        export = model_export_check(user=user, params=params or {})
        params = {**(params or {}), **export[0].as_params()}
    if kind.counts_toward_model_limit:
        if license_lapsed(user_id=user.pk):
            raise LicenseExpired("Your trial has ended; subscribe to import new models.")
        user_models_used_change(user_id=user.pk, delta=1)  # ModelLimitReached (403)
        file_services.model_import_failures_check(user_id=user.pk)
    job = Job(
        user=user,
        kind=kind,
        priority=priority,
        params=params or {},
        requested_count=requested_count,
        max_retries=kind.max_retries,
        runs_on_engine=kind.executor == JobKind.Executor.ENGINE,
        holds_model_slot=kind.counts_toward_model_limit,
        retry_of=retry_of,
    )
    if external_id:
        job.external_id = external_id
    try:
        # No savepoint of its own: on any error this whole transaction rolls back anyway.
        job = job_transition_in_atomic(job=job, to=S.QUEUED)
    except IntegrityError:
        # The transaction is aborted; job_create's atomic block rolls the charge back with it.
        raise _duplicate_external_id() from None
    if export is not None:
        model_export_record(job=job, options=export[0], source=export[1])
    if input_file is not None:
        store_file(job, input_file, JobFile.Role.INPUT, field="input")
    elif input_job_file is not None:
        copy_input_file(job, input_job_file)
    if job.runs_on_engine:
        enqueue_wakeup()
    elif kind.code in settings.REPLICATE_KIND_VERSIONS:
        enqueue_replicate_start(job_id=job.pk)
    return job


@transaction.atomic
def job_cancel(*, job: Job) -> Job:
    """Cancel a job that has not finished: refunds what was charged and frees a model slot;
    a job running on Replicate has its prediction cancelled there after commit.

    Locks the job row (job_transition). Raises InvalidTransition (409) for a finished job.
    """
    job = job_lock(job_id=job.pk)
    if job.status in (S.COMPLETED, S.FAILED, S.CANCELLED):
        raise InvalidTransition(f"A {job.status} job cannot be cancelled.")
    job = job_transition(job=job, to=S.CANCELLED)
    file_services.job_files_delete(job_id=job.pk)
    if job.remote_id and job.kind.code in settings.REPLICATE_KIND_VERSIONS:
        enqueue_replicate_cancel(job_id=job.pk)
    return job


@transaction.atomic
def job_retry(*, job: Job) -> tuple[Job, bool]:
    """Retry a job. Returns (job, created).

    - `retrying` (waiting for its backoff): runs now, same job, nothing charged again.
    - `failed` or `cancelled`: its one retry job — created the first time (same kind, params,
      count, priority and input file, linked by `retry_of`, charged like any new job), returned
      as-is afterwards (created False), so concurrent or repeated retries create one job and
      charge once. Held by the job row lock and the unique index on `retry_of`.
    Anything else → InvalidTransition (409).
    """
    job = job_lock(job_id=job.pk)
    if job.status == S.RETRYING:
        Job.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
        if job.kind.code in settings.REPLICATE_KIND_VERSIONS:
            enqueue_replicate_start(job_id=job.pk)
        else:
            enqueue_wakeup()
        job.refresh_from_db()
        return job, False
    if job.status not in (S.FAILED, S.CANCELLED):
        raise InvalidTransition(f"A {job.status} job cannot be retried.")
    existing = Job.objects.filter(retry_of=job).first()
    if existing is not None:
        return existing, False
    source = job.files.filter(role=JobFile.Role.INPUT).order_by("created_at").first()
    try:
        with transaction.atomic():
            new = job_create(
                user=job.user,
                kind_code=job.kind.code,
                params=job.params,
                requested_count=job.requested_count,
                priority=job.priority,
                retry_of=job,
                input_job_file=source,
            )
    except Conflict:
        # Only reachable if the row lock was bypassed; the unique index still holds.
        existing = Job.objects.filter(retry_of=job).first()
        if existing is None:
            raise
        return existing, False
    return new, True
