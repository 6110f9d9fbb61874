"""Writes to jobs: creating, cancelling, retrying, reporting on jobs, and their files.

Every status change goes through `Job.save()`, so the pre_save signal in `jobs.signals` charges
or refunds credits in the same transaction (and refuses a move the transition table forbids).
Lock order, everywhere: the user row (model limit) → the job row → the credit balance row;
the per-day stats rows are only touched by deferred triggers at commit, after all of these.
"""

import hashlib
import logging
import uuid

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from config.exceptions import ApplicationError, Conflict, Forbidden, InvalidTransition, NotFound
from jobs import conf, file_services
from jobs.files import RULES, check_upload, prefix_for
from jobs.models import ApiUsageLog, Artifact, Job, JobFile, JobKind
from jobs.states import RANK, TERMINAL, JobStatus, can_transition

logger = logging.getLogger(__name__)

S = JobStatus
MAX_REQUESTED_COUNT = 100_000


class ModelLimitReached(Forbidden):
    code = "model_limit_reached"


def _enqueue_wakeup(*, countdown: float | None = None) -> None:
    from jobs.tasks import run_queue

    def send():
        try:
            run_queue.apply_async(queue=conf.get("JOBS_QUEUE"), countdown=countdown)
        except Exception:  # the broker being down must not fail a committed request
            logger.exception("Could not enqueue a job wake-up; the beat rescue will pick the job up.")

    transaction.on_commit(send)


def job_kind_get(*, code: str) -> JobKind:
    kind = JobKind.objects.filter(code=code, is_active=True).first()
    if kind is None:
        raise ApplicationError("Unknown job kind.", code="validation_error",
                               fields={"kind": [f"Unknown or inactive job kind {code!r}."]})
    return kind


def _reserve_model_slot(user_id) -> None:
    """Take one model slot with a conditional UPDATE: concurrent requests queue on the user row
    and re-check `models_used < model_limit` after the lock, so the limit can never be passed."""
    taken = User.objects.filter(pk=user_id, models_used__lt=F("model_limit")).update(
        models_used=F("models_used") + 1)
    if not taken:
        raise ModelLimitReached("You have reached your model limit; upgrade to import more models.")


def _store_file(job: Job, uploaded, role: str, *, field: str = "file") -> JobFile:
    checked = check_upload(uploaded, role=role, field=field)
    job_file = JobFile(job=job, role=role, prefix=checked.prefix, file_type=checked.ext,
                       original_name=(getattr(uploaded, "name", "") or "")[:255], size=checked.size,
                       sha256=checked.sha256, content_type=checked.content_type)
    job_file.file.save(f"upload.{checked.ext}", uploaded, save=False)
    job_file.save()
    return job_file


@transaction.atomic
def job_create(*, user, kind_code: str, params: dict | None = None, requested_count: int = 1,
               priority: int = 0, external_id: str | None = None, input_file=None,
               retry_of: Job | None = None, input_job_file: JobFile | None = None) -> Job:
    """Create a job and queue it, charging credits_per_unit × requested_count.

    Locks the user row when the kind counts toward the model limit (raises ModelLimitReached,
    403); the charge locks the credit balance (InsufficientCredits, 402). On any error nothing
    persists: not the job, not the charge, not the model slot. A duplicate external_id → 409.
    Engine jobs are announced to the workers after commit.
    """
    kind = job_kind_get(code=kind_code)
    if kind.requires_input_file and input_file is None and input_job_file is None:
        raise ApplicationError("This job kind needs an input file.", code="validation_error",
                               fields={"input": ["This job kind needs an `input` file."]})
    if input_file is not None:
        check_upload(input_file, role=JobFile.Role.INPUT, field="input")
        file_services.storage_quota_reserve(user_id=user.pk, size=input_file.size)
    if external_id and Job.objects.filter(external_id=external_id).exists():
        raise Conflict("A job with this external_id already exists.", code="duplicate_external_id")
    if kind.counts_toward_model_limit:
        _reserve_model_slot(user.pk)
        file_services.model_import_failures_check(user_id=user.pk)
    now = timezone.now()
    job = Job(user=user, kind=kind, status=S.QUEUED, priority=priority, params=params or {},
              requested_count=requested_count, max_retries=kind.max_retries, queued_at=now,
              runs_on_engine=kind.executor == JobKind.Executor.ENGINE,
              holds_model_slot=kind.counts_toward_model_limit, retry_of=retry_of)
    if external_id:
        job.external_id = external_id
    try:
        with transaction.atomic():
            job.save()
    except IntegrityError:
        raise Conflict("A job with this external_id already exists.", code="duplicate_external_id") from None
    if input_file is not None:
        _store_file(job, input_file, JobFile.Role.INPUT, field="input")
    elif input_job_file is not None:
        JobFile.objects.create(job=job, role=input_job_file.role, prefix=input_job_file.prefix,
                               file=input_job_file.file.name, original_name=input_job_file.original_name,
                               file_type=input_job_file.file_type, size=input_job_file.size,
                               sha256=input_job_file.sha256, content_type=input_job_file.content_type)
    if job.runs_on_engine:
        _enqueue_wakeup()
    return job


def _locked(job_id) -> Job:
    job = Job.objects.select_for_update(of=("self",)).select_related("kind", "user").filter(pk=job_id).first()
    if job is None:
        raise NotFound("Job not found.")
    return job


@transaction.atomic
def job_cancel(*, job: Job) -> Job:
    """Cancel a job that has not finished; refunds what was charged (signal) and frees a model slot.

    Locks the job row. Raises InvalidTransition (409) for a finished job.
    """
    job = _locked(job.pk)
    if not can_transition(job.status, S.CANCELLED):
        raise InvalidTransition(f"A {job.status} job cannot be cancelled.")
    job.status = S.CANCELLED
    job.completed_at = timezone.now()
    job.save()
    file_services.job_files_delete(job_id=job.pk)
    return job


@transaction.atomic
def job_retry(*, job: Job) -> tuple[Job, bool]:
    """Retry a job. Returns (job, created).

    - `retrying` (waiting for its backoff): runs now, same job, nothing charged again.
    - `failed` or `cancelled`: a new job with the same kind, params, count, priority and input
      file, linked by `retry_of` and charged like any new job (the old one keeps its refund,
      so no job is ever charged or refunded twice).
    Anything else → InvalidTransition (409).
    """
    job = _locked(job.pk)
    if job.status == S.RETRYING:
        job.next_attempt_at = timezone.now()
        job.save()
        _enqueue_wakeup()
        return job, False
    if job.status not in (S.FAILED, S.CANCELLED):
        raise InvalidTransition(f"A {job.status} job cannot be retried.")
    source = job.files.filter(role=JobFile.Role.INPUT).order_by("created_at").first()
    new = job_create(user=job.user, kind_code=job.kind.code, params=job.params,
                     requested_count=job.requested_count, priority=job.priority, retry_of=job,
                     input_job_file=source)
    return new, True


@transaction.atomic
def job_file_add(*, job: Job, uploaded, role: str) -> JobFile:
    """Attach a checked file to a job that has not finished (size, type and sha256 recorded).

    Raises a 400 validation_error for a refused file, InvalidTransition (409) on a finished job,
    413 storage_quota_exceeded / 400 too_many_files (jobs.file_services; user row locked first).
    """
    file_services.storage_quota_reserve(user_id=job.user_id, size=uploaded.size or 0)
    job = _locked(job.pk)
    if job.status in TERMINAL:
        raise InvalidTransition(f"Files cannot be added to a {job.status} job.")
    file_services.job_files_limit_check(job=job)
    return _store_file(job, uploaded, role)


def _walk(job: Job, target: str, now) -> None:
    """Move `job` forward to `target` one legal step at a time, saving each step, so every
    status it passes through is seen by the credit signal (pending → completed passes queued)."""
    path = {
        S.QUEUED: [S.QUEUED],
        S.PROCESSING: [S.QUEUED, S.PROCESSING],
        S.COMPLETED: [S.QUEUED, S.PROCESSING, S.COMPLETED],
        S.FAILED: [S.QUEUED, S.PROCESSING, S.FAILED],
    }[target]
    for step in path:
        if RANK[step] <= RANK[job.status] or not can_transition(job.status, step):
            continue
        job.status = step
        if step == S.QUEUED and job.queued_at is None:
            job.queued_at = now
        if step == S.PROCESSING and job.started_at is None:
            job.started_at = now
        if step in TERMINAL:
            job.completed_at = now
            job.progress = 100 if step == S.COMPLETED else job.progress
        job.save()


def _apply_report(job: Job, *, status: str | None, successful_count=None, failed_count=None,
                  progress=None, output=None, error=None) -> Job:
    """An external worker's report on a job it runs. Late, repeated or out-of-order reports are
    harmless: a finished job is never reopened, counts and progress only grow, and a status that
    does not rank above the current one is ignored."""
    if job.status in TERMINAL:
        return job
    now = timezone.now()
    changed = False
    if successful_count is not None and successful_count > job.successful_count:
        job.successful_count, changed = successful_count, True
    if failed_count is not None and failed_count > job.failed_count:
        job.failed_count, changed = failed_count, True
    if job.successful_count + job.failed_count > job.requested_count:
        raise ApplicationError("successful_count + failed_count cannot exceed requested_count.",
                               code="validation_error",
                               fields={"failed_count": ["successful + failed exceeds requested."]})
    if progress is not None and progress > job.progress:
        job.progress, changed = progress, True
    if output:
        job.result = {**(job.result if isinstance(job.result, dict) else {}), **output}
        changed = True
    if error:
        job.error, changed = str(error)[:10_000], True
    if status is not None and status != S.PENDING and RANK[status] > RANK[job.status]:
        _walk(job, status, now)
    elif changed:
        job.save()
    return job


@transaction.atomic
def job_stats_upsert(*, user, external_id: str, status: str, requested_count: int,
                     successful_count: int = 0, failed_count: int = 0,
                     kind_code: str = "account_batch") -> Job:
    """PATCH /api/stats: create or update the job `external_id` of `user`.

    Creating at `processing` or a finished status passes through `queued`, so credits are
    charged as for any job (402 and nothing stored when short). Locks the job row for updates;
    a concurrent create of the same id loses the unique race and is re-applied as an update.
    Another user's external_id → NotFound (404). Once charged, requested_count is fixed: a
    different value → 409 `requested_count_locked`.
    """
    if successful_count + failed_count > requested_count:
        raise ApplicationError("successful_count + failed_count cannot exceed requested_count.",
                               code="validation_error",
                               fields={"failed_count": ["successful_count + failed_count exceeds "
                                                        "requested_count."]})
    existing = Job.objects.filter(external_id=external_id).values_list("pk", "user_id").first()
    if existing is None:
        kind = job_kind_get(code=kind_code)
        if kind.executor != JobKind.Executor.EXTERNAL:
            # Engine kinds (model_import…) are created through POST /api/jobs, where the model
            # limit and the input file are checked; an external report cannot bypass that.
            raise ApplicationError("This job kind is not run by external workers.", code="validation_error",
                                   fields={"kind": [f"{kind_code!r} cannot be reported through /api/stats."]})
        job = Job(user=user, kind=kind, external_id=external_id, status=S.PENDING,
                  requested_count=requested_count, max_retries=kind.max_retries,
                  runs_on_engine=False)
        try:
            with transaction.atomic():
                job.save()
        except IntegrityError:
            existing = Job.objects.filter(external_id=external_id).values_list("pk", "user_id").first()
            if existing is None:
                raise
        else:
            job = _locked(job.pk)
    if existing is not None:
        if existing[1] != user.pk:
            raise NotFound("Job not found.")
        job = _locked(existing[0])
        if job.requested_count != requested_count:
            if job.charged or job.status in TERMINAL:
                raise Conflict("requested_count cannot change once the job is queued.",
                               code="requested_count_locked")
            job.requested_count = requested_count
            job.save()
    return _apply_report(job, status=status, successful_count=successful_count,
                         failed_count=failed_count)


@transaction.atomic
def job_webhook_apply(*, provider: str, event_id: str, external_id: str, payload: dict,
                      headers: dict, status: str | None, progress: int | None, output: dict | None,
                      error: str | None, metrics: dict | None):
    """A signed external-worker callback. Applies once per (provider, event_id): a redelivery is
    recorded as `duplicate` and changes nothing. Unknown job → NotFound (recorded)."""
    from jobs.models import JobWebhookEvent

    if JobWebhookEvent.objects.filter(provider=provider, event_id=event_id, outcome="applied").exists():
        JobWebhookEvent.objects.create(provider=provider, event_id=event_id, headers=headers,
                                       payload=payload, signature_valid=True, outcome="duplicate")
        return None, "duplicate"
    job_id = Job.objects.filter(external_id=external_id).values_list("pk", flat=True).first()
    if job_id is None:
        JobWebhookEvent.objects.create(provider=provider, event_id=event_id, headers=headers,
                                       payload=payload, signature_valid=True, outcome="unknown_job")
        return None, "unknown_job"
    job = _locked(job_id)
    try:
        with transaction.atomic():
            JobWebhookEvent.objects.create(provider=provider, event_id=event_id, headers=headers,
                                           payload=payload, signature_valid=True, outcome="applied",
                                           job=job)
    except IntegrityError:
        return job, "duplicate"
    artifacts = (output or {}).pop("artifacts", None) if isinstance(output, dict) else None
    was_terminal = job.status in TERMINAL
    job = _apply_report(job, status=status, progress=progress, output=output, error=error)
    if isinstance(artifacts, list) and not was_terminal:
        Artifact.objects.bulk_create([
            Artifact(job=job, user_id=job.user_id, type=str(item.get("type", "item"))[:32],
                     name=str(item.get("name", ""))[:255],
                     data=item.get("data") if isinstance(item.get("data"), dict) else {})
            for item in artifacts[:1000] if isinstance(item, dict)])
    if metrics:
        ApiUsageLog.objects.create(job=job, provider=provider, **metrics)
    return job, "applied"


def job_outputs_store(job: Job, outputs, artifacts) -> None:
    """Persist what a processor produced (inside the completing transaction)."""
    stored = []
    for item in outputs:
        rule = RULES[item.ext]
        job_file = JobFile(job=job, role=item.role, prefix=prefix_for(rule.family, item.role),
                           file_type=item.ext, original_name=item.name, size=len(item.data),
                           sha256=hashlib.sha256(item.data).hexdigest(), content_type=rule.content_type)
        job_file.file.save(f"{uuid.uuid4().hex}.{item.ext}", ContentFile(item.data), save=False)
        job_file.save()
        stored.append(job_file)
    Artifact.objects.bulk_create([
        Artifact(job=job, user_id=job.user_id, type=a["type"][:32], name=a["name"][:255], data=a["data"],
                 file=stored[a["output_index"]] if a.get("output_index") is not None else None)
        for a in artifacts])


REBUILD_SQL = """
INSERT INTO jobs_jobdailystat (user_id, date, jobs, requested, successful, failed, credits_spent, vault_items)
SELECT user_id, date, sum(jobs), sum(requested), sum(successful), sum(failed), sum(credits_spent),
       sum(vault_items)
  FROM (SELECT user_id, (created_at AT TIME ZONE 'UTC')::date AS date, count(*) AS jobs,
               sum(requested_count) AS requested, sum(successful_count) AS successful,
               sum(failed_count) AS failed, sum(credits_charged - credits_refunded) AS credits_spent,
               0 AS vault_items
          FROM jobs_job {job_where} GROUP BY 1, 2
        UNION ALL
        SELECT user_id, job_date, 0, 0, 0, 0, 0, count(*) FROM jobs_artifact {artifact_where} GROUP BY 1, 2) t
 GROUP BY user_id, date
"""


@transaction.atomic
def job_daily_stats_rebuild(*, user_id=None) -> int:
    """Recompute JobDailyStat from jobs and artifacts with set-based SQL (after a bulk load
    with the triggers disabled, or to repair). Locks the jobs and artifacts tables against
    writes (SHARE mode) so no change slips between the recount and the new rows."""
    from django.db import connection

    where, args = ("WHERE user_id = %s", [user_id]) if user_id else ("", [])
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE jobs_job, jobs_artifact IN SHARE MODE")
        cursor.execute(f"DELETE FROM jobs_jobdailystat {where}", args)
        cursor.execute(REBUILD_SQL.format(job_where=where, artifact_where=where), args * 2)
        return cursor.rowcount
