"""Reports on jobs run elsewhere: PATCH /api/stats, service-key reports, signed job webhooks.

`job_report` is the one public entry point for an external report; `job_stats_upsert` (the
seed's PATCH /api/stats, which also creates jobs) and the job webhook handler (jobs/webhooks.py)
are built on it. Who may decide an outcome is `JobKind.reported_by`.
"""

import uuid

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from config.exceptions import ApplicationError, Conflict, Forbidden
from jobs.models import ApiUsageLog, Artifact, Job, JobFile, JobKind
from jobs.services.lifecycle import job_kind_get
from jobs.services.transitions import job_lock, job_transition
from jobs.states import RANK, TERMINAL, JobStatus, can_transition

S = JobStatus
FINISHED = frozenset({S.COMPLETED, S.FAILED})
MAX_ARTIFACTS = 1000


class Reporter(models.TextChoices):
    """Who sends a report: a user's JWT, a service API key, or a signed job webhook."""

    USER = "user", "User (JWT)"
    SERVICE = "service", "Service API key"
    WEBHOOK = "webhook", "Signed job webhook"


def _counts_error(message: str) -> ApplicationError:
    return ApplicationError(message, code="validation_error", fields={"failed_count": [message]})


def _check_reporter(job: Job, reporter: str, status: str | None) -> None:
    reported_by = job.kind.reported_by
    if reported_by == JobKind.ReportedBy.ENGINE:
        raise Forbidden(
            "This job is run by our engine; its outcome cannot be reported.", code="reported_by_engine"
        )
    if status in FINISHED and reporter == Reporter.USER and reported_by == JobKind.ReportedBy.WORKER:
        raise Forbidden(
            "Only the external worker running this job may report its outcome.", code="reported_by_worker"
        )


def _walk(job: Job, target: str, fields: dict, now) -> Job:
    """Move forward to `target` one legal step at a time, each through job_transition, so every
    status it passes through has its money effect (pending → completed passes queued and is
    charged). `fields` are written with the first step, so a completing step sees the counts."""
    for step in (S.QUEUED, S.PROCESSING, target):
        if RANK[step] <= RANK[job.status] or not can_transition(job.status, step):
            continue
        job = job_transition(job=job, to=step, fields=fields, now=now)
        fields = {}
    if fields:
        Job.objects.filter(pk=job.pk).update(**fields)
        for name, value in fields.items():
            setattr(job, name, value)
    return job


def _own_job_pk(*, user, job_id: str):
    """The pk of `user`'s job named by `job_id`: its UUID first, then its external id."""
    try:
        pk = uuid.UUID(job_id)
    except ValueError:
        pk = None
    if pk is not None:
        found = Job.objects.filter(user=user, pk=pk).values_list("pk", flat=True).first()
        if found is not None:
            return found
    return Job.objects.filter(user=user, external_id=job_id).values_list("pk", flat=True).first()


@transaction.atomic
def job_report(
    *,
    job_id,
    reporter: str,
    status: str | None = None,
    successful_count: int | None = None,
    failed_count: int | None = None,
    progress: int | None = None,
    output: dict | None = None,
    error: str | None = None,
    artifacts: list | None = None,
    metrics: dict | None = None,
    provider: str = "",
    vault_items: list | None = None,
) -> Job:
    """Apply one report on a job run elsewhere (a `worker` or `client` kind).

    Locks the job row. Raises NotFound (404) for an unknown job; Forbidden 403
    `reported_by_engine` for a job our engine runs, 403 `reported_by_worker` when a user
    (`reporter="user"`) reports a finished status of a `worker` kind; a 400 validation_error when
    successful + failed would exceed requested_count.
    Guarantees: late, repeated or out-of-order reports are harmless — a finished job is never
    reopened (the report is ignored), counts and progress only grow, a status that does not rank
    above the current one is ignored. A `completed` report without counts means every requested
    unit succeeded (a `failed` one: every unit not reported successful failed), so stats, kept
    from the counts by the rollup triggers, equal what the jobs say. Each report refreshes
    `heartbeat_at` (the rescue fails jobs silent for longer than their kind's timeout). Status
    moves go through job_transition (charge on passing `queued`, refunds on finishing).
    `vault_items` are stored even on a finished job (job_vault_items_store).
    """
    job = job_lock(job_id=job_id)
    _check_reporter(job, reporter, status)
    if vault_items:
        job_vault_items_store(job=job, items=vault_items)
    if job.status in TERMINAL:
        return job
    now = timezone.now()
    if status == S.COMPLETED and successful_count is None and failed_count is None:
        successful_count = job.requested_count - job.failed_count
    elif status == S.FAILED and successful_count is None and failed_count is None:
        failed_count = job.requested_count - job.successful_count
    fields: dict = {"heartbeat_at": now}
    successful = max(job.successful_count, successful_count or 0)
    failed = max(job.failed_count, failed_count or 0)
    if successful + failed > job.requested_count:
        raise _counts_error("successful_count + failed_count cannot exceed requested_count.")
    if successful != job.successful_count:
        fields["successful_count"] = successful
    if failed != job.failed_count:
        fields["failed_count"] = failed
    if progress is not None and progress > job.progress:
        fields["progress"] = progress
    if output:
        fields["result"] = {**(job.result if isinstance(job.result, dict) else {}), **output}
    if error:
        fields["error"] = str(error)[:10_000]
    if status is not None and status != S.PENDING and RANK[status] > RANK[job.status]:
        job = _walk(job, status, fields, now)
    else:
        Job.objects.filter(pk=job.pk).update(**fields)
        for name, value in fields.items():
            setattr(job, name, value)
    if artifacts:
        Artifact.objects.bulk_create(
            [
                Artifact(
                    job=job,
                    user_id=job.user_id,
                    type=str(item.get("type", "item"))[:32],
                    name=str(item.get("name", ""))[:255],
                    data=item.get("data") if isinstance(item.get("data"), dict) else {},
                )
                for item in artifacts[:MAX_ARTIFACTS]
                if isinstance(item, dict)
            ]
        )
    if metrics:
        ApiUsageLog.objects.create(job=job, provider=provider[:64], **metrics)
    return job


def job_vault_items_store(*, job: Job, items: list[dict]) -> None:
    """Store vault items ({kind, external_id, name, data}, already validated) as `job`'s
    artifacts, once per (job, kind, external_id): a repeated or late report (also after the job
    finished) adds only what is new. A `file` item whose external_id is the id of one of the
    job's files is linked to it. The caller holds the job's row lock. Returns how many were new.
    """
    if not items:
        return 0
    file_ids = {
        str(pk)
        for pk in JobFile.objects.filter(
            job=job,
            pk__in=[i["external_id"] for i in items if i["kind"] == "file" and _is_uuid(i["external_id"])],
        ).values_list("pk", flat=True)
    }
    Artifact.objects.bulk_create(
        [
            Artifact(
                job=job,
                user_id=job.user_id,
                type=item["kind"],
                external_id=item["external_id"],
                name=item.get("name", "")[:255],
                data=item.get("data") or {},
                file_id=item["external_id"] if item["external_id"] in file_ids else None,
            )
            for item in items[:MAX_ARTIFACTS]
        ],
        ignore_conflicts=True,
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@transaction.atomic
def job_stats_upsert(
    *,
    user,
    external_id: str,
    status: str,
    requested_count: int,
    successful_count: int | None = None,
    failed_count: int | None = None,
    kind_code: str = "account_batch",
    reporter: str = Reporter.USER,
    vault_items: list | None = None,
) -> Job:
    """PATCH /api/stats: create or update `user`'s job `external_id`, then apply the report
    (job_report, with its 403s and guarantees).

    Creating at `processing` or a finished status passes through `queued`, so credits are
    charged as for any job (402 and nothing stored when short). Locks the job row; a concurrent
    create of the same id loses the (user, external_id) unique race and is re-applied as an
    update. External ids are per user: another user's job with the same id is neither seen nor
    touched. `external_id` may also be the UUID of one of `user`'s jobs (the id POST /api/jobs
    answered): that job is updated, whatever its external id, so a client that reports with
    the id it was given never creates a second job nor pays twice. Once charged,
    requested_count is fixed: a different value → 409 `requested_count_locked`. Engine kinds
    cannot be created here (400).
    """
    if (successful_count or 0) + (failed_count or 0) > requested_count:
        raise _counts_error("successful_count + failed_count cannot exceed requested_count.")
    job_id = _own_job_pk(user=user, job_id=external_id)
    if job_id is None:
        kind = job_kind_get(code=kind_code)
        if kind.reported_by == JobKind.ReportedBy.ENGINE:
            # Engine kinds (model_import…) are created through POST /api/jobs, where the model
            # limit and the input file are checked; an external report cannot bypass that.
            raise ApplicationError(
                "This job kind is not run by external workers.",
                code="validation_error",
                fields={"kind": [f"{kind_code!r} cannot be reported through /api/stats."]},
            )
        job = Job(
            user=user,
            kind=kind,
            external_id=external_id,
            requested_count=requested_count,
            max_retries=kind.max_retries,
            runs_on_engine=False,
        )
        try:
            job_id = job_transition(job=job, to=S.PENDING).pk
        except IntegrityError:
            job_id = (
                Job.objects.filter(user=user, external_id=external_id).values_list("pk", flat=True).first()
            )
            if job_id is None:
                raise
    else:
        job = job_lock(job_id=job_id)
        if job.requested_count != requested_count:
            if job.charged or job.status in TERMINAL:
                raise Conflict(
                    "requested_count cannot change once the job is queued.", code="requested_count_locked"
                )
            Job.objects.filter(pk=job.pk).update(requested_count=requested_count)
    return job_report(
        job_id=job_id,
        reporter=reporter,
        status=status,
        successful_count=successful_count,
        failed_count=failed_count,
        vault_items=vault_items,
    )
