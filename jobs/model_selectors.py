"""Reads of the model lifecycle: models, their exports, projects. Every
queryset is scoped to the caller; anything else is a 404."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Prefetch, Q

from config.exceptions import NotFound
from jobs.models import Job, JobFile, ModelExport, Project

INPUT_FILES = JobFile.objects.filter(role=JobFile.Role.INPUT).order_by("created_at")
THUMBNAIL_FILES = JobFile.objects.filter(role=JobFile.Role.THUMBNAIL).order_by("created_at")


def export_link_ttl() -> timedelta:
    return timedelta(seconds=settings.JOBS_EXPORT_LINK_SECONDS)


def export_expires_at(export: ModelExport) -> datetime | None:
    """When the export's download link stops working: JOBS_EXPORT_LINK_SECONDS after its job
    completed (None while it has not completed)."""
    completed = export.job.completed_at if export.job.status == Job.Status.COMPLETED else None
    return completed + export_link_ttl() if completed else None


def model_queryset(*, user):
    """The user's imported models: jobs of a kind that counts toward the model limit, not
    deleted (any status: an import still running is a model being made)."""
    return Job.objects.filter(user=user, kind__counts_toward_model_limit=True, deleted_at__isnull=True)


def model_list(*, user):
    """model_queryset, newest first, with what the API shows (kind, input file names)."""
    return (
        model_queryset(user=user)
        .select_related("kind")
        .annotate(exports_done=Count("exports", filter=Q(exports__job__status=Job.Status.COMPLETED)))
        .prefetch_related(
            Prefetch("files", queryset=INPUT_FILES, to_attr="input_files"),
            Prefetch("files", queryset=THUMBNAIL_FILES, to_attr="thumbnail_files"),
        )
        .order_by("-created_at", "-id")
    )


def model_get(*, user, job_id) -> Job:
    job = model_list(user=user).filter(pk=job_id).first()
    if job is None:
        raise NotFound("Model not found.")
    return job


def model_export_list(*, user):
    return ModelExport.objects.filter(user=user).select_related("job").order_by("-created_at", "-id")


def model_export_get(*, user, export_id) -> ModelExport:
    export = model_export_list(user=user).filter(pk=export_id).first()
    if export is None:
        raise NotFound("Export not found.")
    return export


def project_list(*, user):
    live_models = Job.objects.filter(deleted_at__isnull=True).order_by("created_at", "id").only("id")
    return (
        Project.objects.filter(user=user)
        .exclude(status=Project.Status.DELETED)
        .prefetch_related(Prefetch("models", queryset=live_models))
        .order_by("-created_at", "-id")
    )


def project_get(*, user, project_id) -> Project:
    project = project_list(user=user).filter(pk=project_id).first()
    if project is None:
        raise NotFound("Project not found.")
    return project
