"""The model lifecycle: exports with options, their download count and
link expiry, soft delete of an imported model (its slot given back once), and projects.

Lock order as everywhere (docs/ARCHITECTURE.md, "Lock order"): the job row → the user row.
"""

import uuid
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.services import user_models_used_change
from config.exceptions import ApplicationError, Conflict, InvalidTransition, NotFound
from config.state_machines import StateMachine
from jobs.export_options import ExportOptions, ExportOptionsError, export_options
from jobs.file_services import job_files_delete
from jobs.model_selectors import export_expires_at, model_queryset
from jobs.models import Job, JobFile, ModelExport, Project, ProjectModel
from jobs.states import PROJECT_STATUS_SETTING, PROJECT_TRANSITIONS, TERMINAL, JobStatus, ProjectStatus

MAX_PROJECT_MODELS = 500
PROJECT_MACHINE = StateMachine(
    entity="project", transitions=PROJECT_TRANSITIONS, setting=PROJECT_STATUS_SETTING
)


class ExportExpired(ApplicationError):
    code = "expired"
    status_code = 410


class ExportNotReady(Conflict):
    code = "export_not_ready"


class ModelNotReady(Conflict):
    code = "model_not_ready"


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError("Invalid input.", code="validation_error", fields={field: [message]})


# --- Exports -----------------------------------------------------------------------------------


def model_export_check(*, user, params: dict) -> tuple[ExportOptions, Job | None]:
    """The options of a new export job and the model it exports (None: the job brings its own
    input file). Raises 400 validation_error for bad options, 404 when `source_job_id` is not
    one of the user's models (another user's, deleted, or none at all: never told apart), 409
    `model_not_ready` while that import has not completed."""
    try:
        options = export_options(params)
    except ExportOptionsError as exc:
        raise ApplicationError(
            "Invalid input." if exc.code == "validation_error" else str(exc),
            code=exc.code,
            fields={"params": [str(exc)]},
        ) from None
    source_id = params.get("source_job_id")
    if source_id is None:
        return options, None
    try:
        source_id = uuid.UUID(str(source_id))
    except ValueError:
        raise _invalid("params", "params.source_job_id must be a UUID.") from None
    source = model_queryset(user=user).filter(pk=source_id).first()
    if source is None:
        raise NotFound("Model not found.")
    if source.status != JobStatus.COMPLETED:
        raise ModelNotReady(f"The model's import is {source.status}; it can be exported once completed.")
    return options, source


def model_export_record(*, job: Job, options: ExportOptions, source: Job | None) -> ModelExport:
    """Record an export job's options (called by job_create, in its transaction)."""
    return ModelExport.objects.create(
        job=job,
        user_id=job.user_id,
        source_job=source,
        format=options.format,
        units=options.units,
        source_units=options.source_units,
        scale=options.scale,
        include_normals=options.include_normals,
        include_colors=options.include_colors,
        include_textures=options.include_textures,
        include_baseplate=options.include_baseplate,
        baseplate_thickness_mm=options.baseplate_thickness_mm if options.include_baseplate else None,
    )


def model_export_download(
    *, export: ModelExport, job_file: JobFile | None = None, now: datetime | None = None
) -> JobFile:
    """Count one download of a completed export and return its file (`job_file`, one of the
    export job's files, when the caller asked for it by the job-files path; its output otherwise).

    Raises 409 `export_not_ready` while the export job has not completed (or failed), 410
    `expired` once its link expired (JOBS_EXPORT_LINK_SECONDS after completion), 404 when its
    file is gone. The count is one `UPDATE … SET download_count = download_count + 1`, never a
    read-modify-write in Python: concurrent downloads queue on the row and each adds exactly one.
    """
    now = now or timezone.now()
    if export.job.status != JobStatus.COMPLETED:
        raise ExportNotReady(f"The export is {export.job.status}; its file is not available.")
    expires_at = export_expires_at(export)
    if now >= expires_at:
        raise ExportExpired("This export's download link has expired; export the model again.")
    if job_file is None:
        job_file = export.job.files.filter(role=JobFile.Role.OUTPUT).order_by("created_at").first()
    if job_file is None:
        raise NotFound("File not found.")
    ModelExport.objects.filter(pk=export.pk).update(
        download_count=F("download_count") + 1, last_downloaded_at=now, updated_at=now
    )
    return job_file


# --- Delete ------------------------------------------------------------------------------------


@transaction.atomic
def model_delete(*, user, job_id, now: datetime | None = None) -> None:
    """Soft-delete one of the user's imported models, delete its stored files and give its model
    slot back.

    Locks the job row, then the user row (the lock order: the slot goes back through
    `accounts.services.user_models_used_change`), so concurrent deletes of one model run one
    after the other: the first sets `deleted_at` and frees the slot, the others find no model
    (404). The slot goes back at most once: `holds_model_slot` is cleared in the same
    transaction, under the job row lock, and a CHECK constraint refuses a deleted job that
    holds one. Raises 404 for another user's, a deleted or an unknown model; 409
    `invalid_transition` while the import is still running (cancel it instead: that also gives
    the slot back).
    The job stays in the jobs list and the stats (soft delete), without its files: their rows
    go now and the stored objects once the delete commits (one still used by another job, such
    as a retry sharing the upload, stays), so the bytes stop counting toward the storage quota
    at once. A deleted model cannot be exported any more; exports made before keep their files.
    """
    now = now or timezone.now()
    found = model_queryset(user=user).filter(pk=job_id).values_list("status", flat=True).first()
    if found is None:
        raise NotFound("Model not found.")
    if found not in TERMINAL:
        raise InvalidTransition(f"The import is {found}; cancel it instead of deleting it.")
    job = model_queryset(user=user).select_for_update(of=("self",)).filter(pk=job_id).first()
    if job is None:  # deleted by a concurrent request while this one waited for the lock
        raise NotFound("Model not found.")
    if job.holds_model_slot:
        user_models_used_change(user_id=user.pk, delta=-1)
    Job.objects.filter(pk=job.pk).update(deleted_at=now, holds_model_slot=False, updated_at=now)
    job_files_delete(job_id=job.pk)


# --- Projects ----------------------------------------------------------------------------------


def _own_models(user, model_ids) -> list:
    """The user's models with these ids (deduplicated, order kept). Any id that is not one of
    them → 400 on `models`, with the same message whether it exists for someone else or not."""
    ids = list(dict.fromkeys(model_ids))
    if len(ids) > MAX_PROJECT_MODELS:
        raise _invalid("models", f"A project holds at most {MAX_PROJECT_MODELS} models.")
    found = set(model_queryset(user=user).filter(pk__in=ids).values_list("pk", flat=True))
    unknown = [str(i) for i in ids if i not in found]
    if unknown:
        raise _invalid("models", f"Unknown model id(s): {', '.join(unknown[:10])}.")
    return ids


def _set_models(project: Project, ids: list) -> None:
    ProjectModel.objects.filter(project=project).exclude(job_id__in=ids).delete()
    present = set(ProjectModel.objects.filter(project=project).values_list("job_id", flat=True))
    ProjectModel.objects.bulk_create(
        [ProjectModel(project=project, job_id=i) for i in ids if i not in present], ignore_conflicts=True
    )


@transaction.atomic
def project_create(*, user, name: str, description: str = "", model_ids=(), tooling_applied=()) -> Project:
    """Create a `draft` project of the user's own models. Raises 400 on `models` for an id that
    is not one of the user's (live) models."""
    ids = _own_models(user, model_ids)
    project = Project.objects.create(
        user=user, name=name, description=description, tooling_applied=list(tooling_applied)
    )
    _set_models(project, ids)
    return project


@transaction.atomic
def project_transition(*, project: Project, to: str, now: datetime | None = None) -> Project:
    """The only writer of `Project.status`: lock the row, check PROJECT_TRANSITIONS (409
    `invalid_transition` otherwise, the status it already has included) and write the status
    with what the move records, in one statement:

    - entering `processing` starts the clock (`processing_started_at`); leaving it adds the time
      spent to `processing_time` (every stay is counted once);
    - `completed` sets `completed_at` (a project processed again and completed again keeps the
      latest); `archived` sets `archived_at`; `deleted` sets `deleted_at` (a soft delete: the
      API answers 404 from then on, its models stay).
    """
    now = now or timezone.now()
    locked = Project.objects.select_for_update().get(pk=project.pk)
    PROJECT_MACHINE.check(locked.status, to)
    fields = ["status", "updated_at"]
    if locked.status == ProjectStatus.PROCESSING and locked.processing_started_at is not None:
        locked.processing_time += max(now - locked.processing_started_at, timedelta(0))
        locked.processing_started_at = None
        fields += ["processing_time", "processing_started_at"]
    if to == ProjectStatus.PROCESSING:
        locked.processing_started_at = now
        fields.append("processing_started_at")
    stamp = {
        ProjectStatus.COMPLETED: "completed_at",
        ProjectStatus.ARCHIVED: "archived_at",
        ProjectStatus.DELETED: "deleted_at",
    }.get(to)
    if stamp:
        setattr(locked, stamp, now)
        fields.append(stamp)
    locked.status = to
    PROJECT_MACHINE.authorise(locked.pk)
    locked.save(update_fields=list(dict.fromkeys(fields)))
    return locked


@transaction.atomic
def project_update(
    *,
    project: Project,
    name: str | None = None,
    description: str | None = None,
    model_ids=None,
    tooling_applied=None,
) -> Project:
    """Change a project's name, description, tooling or models (`model_ids` replaces the set).
    Locks the project row so concurrent updates apply one after the other. Never the status
    (`project_transition`)."""
    project = Project.objects.select_for_update().get(pk=project.pk)
    ids = _own_models(project.user, model_ids) if model_ids is not None else None
    if name is not None:
        project.name = name
    if description is not None:
        project.description = description
    if tooling_applied is not None:
        project.tooling_applied = list(tooling_applied)
    project.save(update_fields=["name", "description", "tooling_applied", "updated_at"])
    if ids is not None:
        _set_models(project, ids)
    return project


@transaction.atomic
def project_delete(*, project: Project, now: datetime | None = None) -> Project:
    """Delete a project: the `deleted` transition (a soft delete; its models stay)."""
    return project_transition(project=project, to=ProjectStatus.DELETED, now=now)
