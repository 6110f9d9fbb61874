import uuid
from datetime import timedelta

import pgtrigger
from django.conf import settings
from django.db import models

from config.models import UUIDModel
from config.status_guard import status_guard
from jobs.export_options import EXPORT_FORMATS, MM_PER_UNIT
from jobs.states import PROJECT_STATUS_SETTING, JobStatus, ProjectStatus

EXTERNAL_ID_MAX = 128


class JobKind(UUIDModel):
    """What a job does and what it costs; staff edit these in admin."""

    class Executor(models.TextChoices):
        ENGINE = "engine", "Engine (Celery workers claim it)"
        EXTERNAL = "external", "External worker (reports via PATCH /api/stats and webhooks)"

    class ReportedBy(models.TextChoices):
        """Who decides a job's outcome."""

        ENGINE = "engine", "Engine (our Celery workers)"
        WORKER = "worker", "External worker (service key or signed job webhook only)"
        CLIENT = "client", "The user's own client (PATCH /api/stats)"

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120, blank=True)
    credits_per_unit = models.PositiveIntegerField(default=0)
    counts_toward_model_limit = models.BooleanField(default=False)
    requires_input_file = models.BooleanField(default=False)
    executor = models.CharField(max_length=16, choices=Executor.choices, default=Executor.ENGINE)
    reported_by = models.CharField(max_length=16, choices=ReportedBy.choices, default=ReportedBy.ENGINE)
    max_retries = models.PositiveSmallIntegerField(default=3)
    timeout = models.PositiveIntegerField(
        default=3600,
        help_text="Seconds one attempt may run (engine), or may go without a report (worker/client).",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=models.Q(timeout__gt=0), name="jobkind_timeout_gt_0"),
            models.CheckConstraint(
                condition=models.Q(reported_by__in=["engine", "worker", "client"]),
                name="jobkind_reported_by_valid",
            ),
        ]

    def __str__(self):
        return self.code


def _external_id_default() -> str:
    return uuid.uuid4().hex


class Job(UUIDModel):
    """One unit of paid work. Status moves only through `jobs.services.job_transition`, along
    `jobs.states.TRANSITIONS`; credits follow the status through the pre_save signal in
    `jobs.signals`. A database trigger (migration 0007) refuses any other status write."""

    Status = JobStatus

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs")
    kind = models.ForeignKey(JobKind, on_delete=models.PROTECT, related_name="jobs")
    # Unique per user (not globally: another user's id must not answer 409, an existence oracle).
    external_id = models.CharField(max_length=EXTERNAL_ID_MAX, default=_external_id_default)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    priority = models.SmallIntegerField(default=0, help_text="Higher runs first.")
    # Copied from the kind at creation so the claim query needs no join.
    runs_on_engine = models.BooleanField(default=True)
    params = models.JSONField(default=dict, blank=True)
    requested_count = models.PositiveIntegerField(default=1)
    successful_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    progress = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    max_retries = models.PositiveSmallIntegerField(default=3)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Engine jobs: the worker's heartbeat. worker/client jobs: the time of the last report.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # External workers (POST /api/worker/claim): until when the current attempt holds the job,
    # and the service key that claimed it; a report or file of an expired lease is 409.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    leased_by = models.ForeignKey(
        "accounts.ServiceApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # When the current attempt started processing: the rescue fails attempts older than kind.timeout.
    attempt_started_at = models.DateTimeField(null=True, blank=True)
    # The job's id at an outside service that runs it (a Replicate prediction id): its webhooks
    # name the job by it. Empty for jobs run anywhere else (the database default too, so rows
    # inserted in SQL, such as bulk loads and the benchmarks, need not name it).
    remote_id = models.CharField(max_length=128, blank=True, default="", db_default="")
    credits_charged = models.PositiveIntegerField(default=0)
    credits_refunded = models.PositiveIntegerField(default=0)
    # Set once the charge has been attempted for this job, so re-entering states never re-charges.
    charged = models.BooleanField(default=False)
    holds_model_slot = models.BooleanField(default=False)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Soft delete of an imported model (DELETE /api/models/<job_id>): set once, with the slot
    # given back in the same statement (jobs.services.models3d.model_delete).
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The list: each filter + its full ordering (ending with the id), so page 1 and every
            # keyset page are index range scans whatever the user's history.
            models.Index(fields=["user", "-created_at", "-id"], name="job_user_created"),
            models.Index(fields=["user", "status", "-created_at", "-id"], name="job_user_status"),
            models.Index(fields=["user", "kind", "-created_at", "-id"], name="job_user_kind"),
            # The engine's claim: highest priority, then oldest, among claimable engine jobs.
            models.Index(
                models.F("priority").desc(),
                "queued_at",
                name="job_claim_order",
                condition=models.Q(status__in=["queued", "retrying"], runs_on_engine=True),
            ),
            # The rescue's scan: running jobs by heartbeat age.
            models.Index(
                fields=["heartbeat_at"],
                name="job_running_heartbeat",
                condition=models.Q(status__in=["preparing", "processing", "finalizing"]),
            ),
            # The rescue's scan of jobs run elsewhere that may have gone silent.
            models.Index(
                fields=["kind", "heartbeat_at"],
                name="job_external_open",
                condition=models.Q(
                    runs_on_engine=False,
                    status__in=["pending", "queued", "preparing", "processing", "finalizing", "retrying"],
                ),
            ),
            # Webhooks address jobs by the worker's id.
            models.Index(fields=["external_id"], name="job_external_id"),
            # Replicate's webhooks address jobs by the prediction id.
            models.Index(fields=["remote_id"], name="job_remote_id", condition=~models.Q(remote_id="")),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="job_progress_lte_100"),
            models.CheckConstraint(
                condition=models.Q(
                    successful_count__lte=models.F("requested_count") - models.F("failed_count")
                ),
                name="job_counts_within_requested",
            ),
            models.CheckConstraint(
                condition=models.Q(credits_refunded__lte=models.F("credits_charged")),
                name="job_refund_within_charge",
            ),
            models.CheckConstraint(condition=models.Q(status__in=JobStatus.values), name="job_status_valid"),
            models.UniqueConstraint(fields=["user", "external_id"], name="job_external_id_per_user"),
            # A deleted model never holds a model slot: its slot went back when it was deleted.
            models.CheckConstraint(
                condition=models.Q(deleted_at__isnull=True) | models.Q(holds_model_slot=False),
                name="job_deleted_holds_no_slot",
            ),
            # A failed or cancelled job is retried at most once (concurrent retries share it).
            models.UniqueConstraint(
                fields=["retry_of"], condition=models.Q(retry_of__isnull=False), name="job_one_retry_per_job"
            ),
        ]

    def __str__(self):
        # Not the kind's code: that is a query per row in every list that shows jobs.
        return f"job {self.external_id} ({self.status})"

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        # What the row held when loaded: the signals compare against it to detect transitions.
        instance._loaded_status = instance.__dict__.get("status")
        return instance

    @property
    def credits_spent(self) -> int:
        return self.credits_charged - self.credits_refunded

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


JOB_FILE_PREFIXES = ("raw-videos/", "final-videos/", "thumbnails/", "models/")


def job_file_upload_to(instance: "JobFile", filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"{instance.prefix}{instance.job.user_id}/{instance.job_id}/{uuid.uuid4().hex}.{ext}"


class JobFile(UUIDModel):
    class Role(models.TextChoices):
        INPUT = "input", "Input"
        OUTPUT = "output", "Output"
        THUMBNAIL = "thumbnail", "Thumbnail"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="files")
    role = models.CharField(max_length=16, choices=Role.choices)
    prefix = models.CharField(max_length=32)
    file = models.FileField(upload_to=job_file_upload_to, max_length=255)
    original_name = models.CharField(max_length=255, blank=True)
    file_type = models.CharField(max_length=16, help_text="Lower-case extension, e.g. stl, mp4.")
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=100)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["job", "role"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(prefix__in=JOB_FILE_PREFIXES), name="jobfile_prefix_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=["input", "output", "thumbnail"]), name="jobfile_role_valid"
            ),
        ]

    def __str__(self):
        return f"{self.role} {self.file.name}"


# What a vault item reported by a worker or a client may be (its Artifact.type).
VAULT_KINDS = ("business_center", "user_account", "file")


class Artifact(UUIDModel):
    """An item a job produced (a created account, a rendered file): the user's vault."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="artifacts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="artifacts")
    type = models.CharField(max_length=32)
    # The producer's id for the item (a vault item's external_id): one artifact per
    # (job, type, external_id), so a repeated report stores it once.
    external_id = models.CharField(max_length=128, blank=True, default="")
    name = models.CharField(max_length=255, blank=True)
    data = models.JSONField(default=dict, blank=True)
    file = models.ForeignKey(
        JobFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="artifacts"
    )
    # The UTC date the job was created, filled by a database trigger: the vault count of
    # JobDailyStat is kept on that date, and it must be known when the job row is already gone.
    job_date = models.DateField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at", "-id"], name="artifact_user_created")]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "type", "external_id"],
                condition=~models.Q(external_id=""),
                name="artifact_once_per_external_id",
            )
        ]

    def __str__(self):
        return f"{self.type} {self.name}"


class ApiUsageLog(UUIDModel):
    """One call to an outside provider (payment providers, Replicate, channels, email, external
    workers' own reports), with its cost when the provider states one (read-only in admin).
    Written through `config.outside_calls.outside_call` (jobs.usage records it)."""

    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_logs")
    provider = models.CharField(max_length=64)
    endpoint = models.CharField(max_length=255, blank=True)
    units = models.PositiveIntegerField(default=0)
    # Null: the provider stated no cost for this call.
    cost = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True, default=None)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    succeeded = models.BooleanField(default=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["provider", "-created_at"])]
        constraints = [models.CheckConstraint(condition=models.Q(cost__gte=0), name="apiusage_cost_gte_0")]

    def __str__(self):
        return f"{self.provider} {self.endpoint} ({self.units})"


class JobDailyStat(models.Model):
    """Per-user, per-day totals of the jobs created that day (UTC), and of those that ended that
    day, read by /api/stats.

    Maintained by deferred row triggers on jobs_job and jobs_artifact (migrations 0003, and
    0010 for the ended counts) in the same transaction as the change, so it is never out of
    step, whoever writes the job.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    jobs = models.BigIntegerField(default=0)
    requested = models.BigIntegerField(default=0)
    successful = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    credits_spent = models.BigIntegerField(default=0)
    vault_items = models.BigIntegerField(default=0)
    # Jobs that *ended* that day (UTC date of completed_at) as completed / failed, whatever day
    # they were created: /api/stats' completed_jobs and failed_jobs, without scanning jobs.
    ended_completed = models.BigIntegerField(default=0, db_default=0)
    ended_failed = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        ordering = ["user", "date"]
        constraints = [models.UniqueConstraint(fields=["user", "date"], name="jobdailystat_user_date")]

    def __str__(self):
        return f"{self.user_id} {self.date}: {self.jobs} jobs"


LENGTH_UNITS = tuple(MM_PER_UNIT)


class ModelExport(UUIDModel):
    """One export of a model: the options it was made with, recorded as
    asked, and how often its file was downloaded. Its link expires JOBS_EXPORT_LINK_SECONDS
    after the export job completed (jobs.services.models3d)."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="model_export")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="model_exports")
    # The imported model exported (null when the export job was given its own input file).
    source_job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="exports"
    )
    format = models.CharField(max_length=8)
    units = models.CharField(max_length=4)
    source_units = models.CharField(max_length=4)
    scale = models.DecimalField(max_digits=16, decimal_places=6)
    include_normals = models.BooleanField(default=True)
    include_colors = models.BooleanField(default=True)
    include_textures = models.BooleanField(default=True)
    include_baseplate = models.BooleanField(default=False)
    # Millimetres, whatever the export's units (null without a baseplate).
    baseplate_thickness_mm = models.DecimalField(max_digits=7, decimal_places=3, null=True, blank=True)
    download_count = models.PositiveIntegerField(default=0)
    last_downloaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="modelexport_user_created")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(format__in=EXPORT_FORMATS), name="modelexport_format_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(units__in=LENGTH_UNITS), name="modelexport_units_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(source_units__in=LENGTH_UNITS), name="modelexport_source_units_valid"
            ),
            models.CheckConstraint(condition=models.Q(scale__gt=0), name="modelexport_scale_gt_0"),
            models.CheckConstraint(
                condition=models.Q(include_baseplate=False, baseplate_thickness_mm__isnull=True)
                | models.Q(include_baseplate=True, baseplate_thickness_mm__gt=0),
                name="modelexport_baseplate_thickness",
            ),
        ]
        triggers = [
            # The export job and the exported model are the export owner's, whoever writes the row.
            pgtrigger.Trigger(
                name="modelexport_same_user",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.Update,
                func="""
                IF NOT EXISTS (SELECT 1 FROM jobs_job WHERE id = NEW.job_id AND user_id = NEW.user_id)
                   OR (NEW.source_job_id IS NOT NULL AND NOT EXISTS (
                       SELECT 1 FROM jobs_job WHERE id = NEW.source_job_id AND user_id = NEW.user_id)) THEN
                    RAISE EXCEPTION 'export % mixes jobs of different users', NEW.id USING ERRCODE = '23514';
                END IF;
                RETURN NEW;
                """,
            ),
        ]

    def __str__(self):
        return f"{self.format} export {self.pk}"

    @property
    def processing_time(self) -> timedelta | None:
        """How long the worker took to read and convert the model, as recorded in the export
        job's result when it completed (None before)."""
        result = self.job.result if isinstance(self.job.result, dict) else {}
        ms = result.get("processing_ms")
        return timedelta(milliseconds=ms) if isinstance(ms, int) else None


class Project(UUIDModel):
    """A user's named group of their own imported models, with its lifecycle (jobs.states:
    draft → processing → completed → archived / deleted). The status moves only through
    `jobs.services.models3d.project_transition` (a database trigger refuses any other write)."""

    Status = ProjectStatus

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=ProjectStatus.choices, default=ProjectStatus.DRAFT)
    # The tooling applied to the project's models (e.g. "baseplate"): short names, in order.
    tooling_applied = models.JSONField(default=list, blank=True)
    # Time spent in `processing`, summed over every time the project was processed.
    processing_time = models.DurationField(default=timedelta(0))
    processing_started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Last: the field's name shadows the `models` module in the rest of the class body.
    models = models.ManyToManyField(Job, through="ProjectModel", related_name="projects", blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="project_user_created")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=ProjectStatus.values), name="project_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(processing_time__gte=timedelta(0)), name="project_processing_time_gte_0"
            ),
            # A deleted project carries when it was deleted, and only a deleted one does.
            models.CheckConstraint(
                condition=models.Q(status=ProjectStatus.DELETED, deleted_at__isnull=False)
                | (~models.Q(status=ProjectStatus.DELETED) & models.Q(deleted_at__isnull=True)),
                name="project_deleted_at_iff_deleted",
            ),
        ]
        triggers = [
            status_guard(
                name="project_status_guard",
                setting=PROJECT_STATUS_SETTING,
                writer="jobs.services.models3d.project_transition",
            ),
        ]

    def __str__(self):
        return self.name


class ProjectModel(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [models.UniqueConstraint(fields=["project", "job"], name="projectmodel_unique")]
        triggers = [
            # A project holds only its owner's models, whoever writes the row.
            pgtrigger.Trigger(
                name="projectmodel_same_user",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.Update,
                func="""
                IF NOT EXISTS (
                    SELECT 1 FROM jobs_project p JOIN jobs_job j ON j.user_id = p.user_id
                     WHERE p.id = NEW.project_id AND j.id = NEW.job_id) THEN
                    RAISE EXCEPTION 'job % is not a model of the owner of project %',
                        NEW.job_id, NEW.project_id USING ERRCODE = '23514';
                END IF;
                RETURN NEW;
                """,
            ),
        ]

    def __str__(self):
        return f"{self.project_id}: {self.job_id}"
