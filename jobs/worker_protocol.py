"""The pull protocol of external workers (a service key with scope `jobs:work`).

A worker claims jobs of the kinds its key is bound to (`ServiceApiKey.job_kinds`, empty: every
kind run by external workers), heartbeats to keep its lease, downloads the inputs through
signed, short-lived URLs, uploads outputs and thumbnails, and reports the outcome:

1. claim: `queued|retrying → preparing` through `job_transition` (attempts + 1: the attempt
   number; `lease_expires_at`; `leased_by` the key), highest priority then oldest, due jobs
   only, locked `FOR UPDATE SKIP LOCKED` so concurrent claimers never take the same job;
2. heartbeat: extends the lease (the first one also moves `preparing → processing`);
3. files and report: accepted only from the attempt that holds an unexpired lease, through the
   key that claimed it (else 409 `lease_lost`); the report walks the job forward through
   `job_report`, the same path as every external report (charges, refunds, counts, vault);
4. an expired lease is a failed attempt (`jobs.engine.jobs_rescue_stale`, every minute):
   `retrying` with backoff while attempts remain, then `failed` and refunded.

Nothing here writes a status or money by itself: every move is `job_transition`, and a
failed attempt is the engine's `job_attempt_failed`.
"""

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import ServiceApiKey
from config.exceptions import ApplicationError, Conflict, Forbidden, NotFound
from jobs.engine import job_attempt_failed
from jobs.models import Job, JobFile, JobKind
from jobs.services import Reporter, job_file_add, job_lock, job_report, job_transition_in_atomic
from jobs.states import CLAIMABLE, RUNNING, JobStatus

S = JobStatus
DOWNLOAD_SALT = "jobs.worker-download"


# A job waits for its inputs before a worker may claim it when `params.input_count` says how
# many its owner will upload (the owner creates the job, then uploads the clips); a value that is
# not a number waits for none. One predicate in the claim, so claimers lock only what they take.
INPUTS_ARRIVED_SQL = f"""
CASE WHEN jsonb_typeof({Job._meta.db_table}.params -> 'input_count') = 'number'
     THEN ({Job._meta.db_table}.params ->> 'input_count')::numeric ELSE 0 END
  <= (SELECT count(*) FROM {JobFile._meta.db_table} AS f
       WHERE f.job_id = {Job._meta.db_table}.id AND f.role = '{JobFile.Role.INPUT.value}')
"""


class LeaseLost(Conflict):
    code = "lease_lost"


def worker_kinds_for(*, api_key: ServiceApiKey, requested: list[str] | None) -> list[str]:
    """The kind codes `api_key` may work on among `requested` (None/empty: all it may).

    Only kinds run by external workers (`reported_by = worker`) and active. A requested kind
    the key is not bound to, or that no external worker runs → 403 `kind_not_allowed`. Kinds
    mapped to Replicate (REPLICATE_KIND_VERSIONS) run there, never through a claim."""
    worker_kinds = set(
        JobKind.objects.filter(reported_by=JobKind.ReportedBy.WORKER, is_active=True).values_list(
            "code", flat=True
        )
    ) - set(settings.REPLICATE_KIND_VERSIONS)
    allowed = {code for code in worker_kinds if api_key.may_work_on(code)}
    if not requested:
        return sorted(allowed)
    refused = sorted(set(requested) - allowed)
    if refused:
        raise Forbidden(f"This key may not work on: {', '.join(refused)}.", code="kind_not_allowed")
    return sorted(set(requested))


def lease_seconds_clamp(value: int | None) -> int:
    if value is None:
        return int(settings.WORKER_LEASE_SECONDS)
    return max(1, min(int(value), int(settings.WORKER_LEASE_MAX_SECONDS)))


@transaction.atomic
def worker_jobs_claim(
    *, api_key: ServiceApiKey, kinds: list[str], limit: int, lease_seconds: int, now=None
) -> list[Job]:
    """Claim up to `limit` due jobs of `kinds` (already checked by `worker_kinds_for`).

    Locks the claimed job rows (`FOR UPDATE SKIP LOCKED`: a row another claimer holds is
    skipped, never waited for), highest priority then oldest; each moves `queued|retrying →
    preparing` through `job_transition_in_atomic` with attempts + 1, the lease and the key.
    A job still waiting for its inputs (INPUTS_ARRIVED_SQL) is left for a later claim.
    Nothing is charged (the charge happened when the job was queued). Returns the jobs."""
    now = now or timezone.now()
    if not kinds or limit <= 0:
        return []
    due = (
        Job.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("kind", "user")
        .filter(
            status__in=sorted(CLAIMABLE),
            runs_on_engine=False,
            kind__code__in=kinds,
            kind__reported_by=JobKind.ReportedBy.WORKER,
        )
        .exclude(next_attempt_at__gt=now)
        .extra(where=[INPUTS_ARRIVED_SQL])
        .order_by("-priority", "queued_at", "id")[:limit]
    )
    claimed = []
    for job in list(due):
        claimed.append(
            job_transition_in_atomic(
                job=job,
                to=S.PREPARING,
                locked=True,
                now=now,
                fields={
                    "attempts": job.attempts + 1,
                    "heartbeat_at": now,
                    "lease_expires_at": now + timedelta(seconds=lease_seconds),
                    "leased_by_id": api_key.pk,
                    "next_attempt_at": None,
                    "attempt_started_at": now,
                },
            )
        )
    return claimed


def _job_for_key(*, api_key: ServiceApiKey, job_id) -> Job:
    """The job locked, if it is of a kind this key works on (else 404, as if it did not exist)."""
    job = job_lock(job_id=job_id)
    if job.kind.reported_by != JobKind.ReportedBy.WORKER or not api_key.may_work_on(job.kind.code):
        raise NotFound("Job not found.")
    return job


def _leased(*, api_key: ServiceApiKey, job_id, attempt: int, now) -> Job:
    """The job locked, if `attempt` through `api_key` still holds an unexpired lease on it;
    404 for a job the key may not see, 409 `lease_lost` otherwise."""
    job = _job_for_key(api_key=api_key, job_id=job_id)
    if (
        job.status not in RUNNING
        or job.attempts != attempt
        or job.leased_by_id != api_key.pk
        or job.lease_expires_at is None
        or job.lease_expires_at <= now
    ):
        raise LeaseLost("This attempt no longer holds the job's lease.")
    return job


@transaction.atomic
def worker_heartbeat(
    *, api_key: ServiceApiKey, job_id, attempt: int, progress: int | None, lease_seconds: int, now=None
) -> Job:
    """Extend the lease of `attempt` by `lease_seconds` from now and record progress (only
    growing). The first heartbeat moves `preparing → processing` (job_transition). Locks the
    job row; 409 `lease_lost` if the attempt lost its lease."""
    now = now or timezone.now()
    job = _leased(api_key=api_key, job_id=job_id, attempt=attempt, now=now)
    fields = {"heartbeat_at": now, "lease_expires_at": now + timedelta(seconds=lease_seconds)}
    if progress is not None and progress > job.progress:
        fields["progress"] = progress
    if job.status == S.PREPARING:
        return job_transition_in_atomic(job=job, to=S.PROCESSING, fields=fields, locked=True, now=now)
    Job.objects.filter(pk=job.pk).update(**fields)
    job.refresh_from_db()
    return job


@transaction.atomic
def worker_file_add(
    *, api_key: ServiceApiKey, job_id, attempt: int, role: str, uploaded, now=None
) -> JobFile:
    """Attach an output or thumbnail uploaded by the attempt holding the lease (job_file_add:
    checked type and size, the owner's storage quota). Locks the job row, then the user row."""
    now = now or timezone.now()
    if role not in (JobFile.Role.OUTPUT, JobFile.Role.THUMBNAIL):
        raise ApplicationError(
            "Invalid input.", code="validation_error", fields={"role": ["Must be output or thumbnail."]}
        )
    job = _leased(api_key=api_key, job_id=job_id, attempt=attempt, now=now)
    return job_file_add(job=job, uploaded=uploaded, role=role)


@transaction.atomic
def worker_report(
    *,
    api_key: ServiceApiKey,
    job_id,
    attempt: int,
    status: str,
    progress: int | None = None,
    successful_count: int | None = None,
    failed_count: int | None = None,
    error: str | None = None,
    metrics: dict | None = None,
    vault_items: list | None = None,
    retry: bool = False,
    now=None,
) -> Job:
    """The attempt's report. Locks the job row; 409 `lease_lost` unless `attempt` holds the
    lease through this key.

    - `processing`: progress (and counts), the lease extended as by a heartbeat;
    - `completed`: through `job_report` (counts, `completed`; the failed units refunded);
    - `failed` with `retry`: a failed attempt (`job_attempt_failed`: `retrying` with backoff
      while attempts remain, else `failed` and refunded); without: the job fails and is refunded.
    `metrics` are kept on the job's result (`result.metrics`); `vault_items` are stored once
    per (job, kind, external_id)."""
    now = now or timezone.now()
    job = _leased(api_key=api_key, job_id=job_id, attempt=attempt, now=now)
    output = {"metrics": metrics} if metrics else None
    if status == S.PROCESSING:
        job = worker_heartbeat(
            api_key=api_key,
            job_id=job.pk,
            attempt=attempt,
            progress=progress,
            lease_seconds=lease_seconds_clamp(None),
            now=now,
        )
        return job_report(
            job_id=job.pk,
            reporter=Reporter.SERVICE,
            successful_count=successful_count,
            failed_count=failed_count,
            output=output,
            vault_items=vault_items,
        )
    if status == S.FAILED and retry:
        job_report(job_id=job.pk, reporter=Reporter.SERVICE, output=output, vault_items=vault_items)
        job_attempt_failed(job_id=job.pk, attempt=attempt, error=error or "The worker reported a failure.")
        return Job.objects.select_related("kind").get(pk=job.pk)
    return job_report(
        job_id=job.pk,
        reporter=Reporter.SERVICE,
        status=status,
        successful_count=successful_count,
        failed_count=failed_count,
        progress=progress,
        output=output,
        error=error,
        vault_items=vault_items,
    )


def input_download_url(*, job_file: JobFile, attempt: int) -> str:
    """A signed URL for one input file of a claimed job, valid WORKER_DOWNLOAD_URL_SECONDS and
    needing no key (root-relative, like every URL the API returns)."""
    token = signing.dumps(
        {"f": str(job_file.pk), "j": str(job_file.job_id), "a": attempt}, salt=DOWNLOAD_SALT
    )
    return reverse("worker-input-download", kwargs={"token": token})


def input_file_from_token(*, token: str) -> JobFile:
    """The input file a signed download token names; 404 when the token is forged, expired,
    or the file is gone (never says which)."""
    try:
        claims = signing.loads(token, salt=DOWNLOAD_SALT, max_age=settings.WORKER_DOWNLOAD_URL_SECONDS)
        job_file = JobFile.objects.filter(pk=claims["f"], job_id=claims["j"], role=JobFile.Role.INPUT).first()
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        job_file = None
    if job_file is None:
        raise NotFound("File not found.")
    return job_file


def claimed_inputs(*, jobs: list[Job]) -> dict:
    """Each claimed job's input files (the clips the params name come from here), by job id."""
    by_job: dict = {job.pk: [] for job in jobs}
    for job_file in JobFile.objects.filter(job__in=[j.pk for j in jobs], role=JobFile.Role.INPUT).order_by(
        "created_at", "id"
    ):
        by_job[job_file.job_id].append(job_file)
    return by_job
