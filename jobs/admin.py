from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from import_export import resources

from config.admin import ReadOnlyAdmin
from config.admin_tools import CsvExportMixin, OperationForm, operation_view, with_reason
from config.exceptions import ApplicationError
from jobs import services
from jobs.models import ApiUsageLog, Artifact, Job, JobDailyStat, JobFile, JobKind, ModelExport, Project


@admin.register(JobKind)
class JobKindAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "credits_per_unit",
        "counts_toward_model_limit",
        "executor",
        "reported_by",
        "requires_input_file",
        "max_retries",
        "timeout",
        "is_active",
    ]
    list_editable = ["credits_per_unit", "max_retries", "is_active"]
    search_fields = ["code", "name"]


class JobFileInline(admin.TabularInline):
    model = JobFile
    extra = 0
    can_delete = False
    # The stored object's own URL points at MEDIA_URL, which nothing serves: link to the admin's
    # download view instead (staff only, through the same delivery as the API).
    fields = ["role", "download", "file_type", "size", "sha256", "content_type", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="File")
    def download(self, obj):
        url = reverse("admin:jobs_job_file_download", kwargs={"job_id": obj.job_id, "file_id": obj.pk})
        return format_html('<a href="{}">{}</a>', url, obj.original_name or obj.file.name)


class ArtifactInline(admin.TabularInline):
    model = Artifact
    extra = 0
    can_delete = False
    fields = ["type", "name", "data", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class JobResource(resources.ModelResource):
    class Meta:
        model = Job
        fields = (
            "id",
            "external_id",
            "created_at",
            "user__email",
            "kind__code",
            "status",
            "priority",
            "requested_count",
            "successful_count",
            "failed_count",
            "attempts",
            "credits_charged",
            "credits_refunded",
            "retry_of__id",
            "queued_at",
            "started_at",
            "completed_at",
        )
        export_order = fields


@admin.register(Job)
class JobAdmin(CsvExportMixin, admin.ModelAdmin):
    """Staff see and steer jobs; status and credits change only through the services: the
    Retry and Cancel forms on a job's page (and the list actions) call job_retry / job_cancel
    → job_transition, and write the admin history. Status is read-only here, and the database
    refuses a status write that does not come from job_transition anyway."""

    resource_classes = [JobResource]
    change_form_template = "admin/jobs/job/change_form.html"
    list_display = ["external_id", "user", "kind", "status", "progress", "credits_charged", "created_at"]
    list_filter = ["status", "kind", "priority", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["external_id", "=id", "=remote_id", "user__email"]
    date_hierarchy = "created_at"
    list_select_related = ["user", "kind"]
    raw_id_fields = ["user", "retry_of"]
    actions = ["retry_jobs", "cancel_jobs"]
    inlines = [JobFileInline, ArtifactInline]
    readonly_fields = [
        "id",
        "user",
        "kind",
        "external_id",
        "remote_id",
        "status",
        "failure",
        "runs_on_engine",
        "requested_count",
        "successful_count",
        "failed_count",
        "progress",
        "attempts",
        "next_attempt_at",
        "heartbeat_at",
        "credits_charged",
        "credits_refunded",
        "charged",
        "holds_model_slot",
        "result",
        "error",
        "retry_of",
        "queued_at",
        "started_at",
        "completed_at",
        "created_at",
        "updated_at",
    ]
    fields = readonly_fields[:2] + ["priority", "max_retries", "params"] + readonly_fields[2:]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="why it failed")
    def failure(self, obj):
        """The job's error next to its status (failed, cancelled, or waiting to retry)."""
        if not obj.error:
            return "—"
        return format_html('<strong class="job-error" style="color:var(--error-fg)">{}</strong>', obj.error)

    def get_urls(self):
        download = path(
            "<uuid:job_id>/files/<uuid:file_id>/download/",
            self.admin_site.admin_view(self.download_file),
            name="jobs_job_file_download",
        )
        operations = [
            path(
                f"<uuid:job_id>/{name}/",
                self.admin_site.admin_view(getattr(self, f"{name}_view")),
                name=f"jobs_job_{name}",
            )
            for name in ("retry", "cancel")
        ]
        return [download, *operations, *super().get_urls()]

    def has_operate_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_operate": self.has_operate_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def retry_view(self, request, job_id):
        return self._operation(request, job_id, "retry")

    def cancel_view(self, request, job_id):
        return self._operation(request, job_id, "cancel")

    def _operation(self, request, job_id, name):
        job = get_object_or_404(Job.objects.select_related("user", "kind"), pk=job_id)

        def perform(data):
            message = self._apply(job, name)
            return with_reason(message, data["reason"]) if message else None

        return operation_view(
            self,
            request,
            obj=job,
            form_class=OperationForm,
            perform=perform,
            title=f"{name.capitalize()} job {job.external_id}",
            form_id=f"job-{name}-form",
            success_url=reverse("admin:jobs_job_change", args=[job.pk]),
            allowed=self.has_operate_permission(request, job),
            extra_context={
                "summary": [
                    ("Job", job.external_id),
                    ("User", job.user.email),
                    ("Kind", job.kind.code),
                    ("Status", job.get_status_display()),
                    ("Credits charged", job.credits_charged),
                ],
                "submit_label": name.capitalize(),
            },
        )

    @staticmethod
    def _apply(job, name) -> str | None:
        """Call the service the API calls and describe what it did (None: nothing to do)."""
        if name == "cancel":
            done = services.job_cancel(job=job)
            return f"Cancelled job {done.external_id}; {done.credits_refunded} credits refunded."
        retried, created = services.job_retry(job=job)
        if retried.pk == job.pk:
            return f"Retried job {job.external_id} now (it was waiting for its backoff)."
        if not created:
            return None  # its one retry job exists already
        return f"Created retry job {retried.external_id} of job {job.external_id}; status {retried.status}."

    def download_file(self, request, job_id, file_id):
        from jobs.file_apis import job_file_response

        if not self.has_view_permission(request):
            raise PermissionDenied
        job_file = JobFile.objects.filter(pk=file_id, job_id=job_id).first()
        if job_file is None:
            raise Http404("File not found.")
        return job_file_response(job_file)

    def _each(self, request, queryset, name, verb):
        done = 0
        for job in queryset.select_related("user", "kind").order_by("pk"):
            try:
                message = self._apply(job, name)
            except ApplicationError as exc:
                self.message_user(request, f"{job.external_id}: {exc.message}", messages.WARNING)
            else:
                if message is not None:
                    self.log_change(request, job, f"{message} (list action, no reason given)")
                done += 1
        self.message_user(request, f"{verb} {done} job(s).", messages.SUCCESS)

    @admin.action(
        description="Retry selected jobs (failed/cancelled → new job; retrying → now)",
        permissions=["operate"],
    )
    def retry_jobs(self, request, queryset):
        self._each(request, queryset, "retry", "Retried")

    @admin.action(description="Cancel selected jobs (refunds what was charged)", permissions=["operate"])
    def cancel_jobs(self, request, queryset):
        self._each(request, queryset, "cancel", "Cancelled")


@admin.register(ApiUsageLog)
class ApiUsageLogAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "provider",
        "endpoint",
        "units",
        "cost",
        "duration_ms",
        "status_code",
        "succeeded",
        "job",
    ]
    list_filter = ["provider", "succeeded", "status_code"]
    date_hierarchy = "created_at"
    search_fields = ["provider", "endpoint", "job__external_id"]
    list_select_related = ["job"]


@admin.register(JobDailyStat)
class JobDailyStatAdmin(ReadOnlyAdmin):
    list_display = [
        "user",
        "date",
        "jobs",
        "requested",
        "successful",
        "failed",
        "credits_spent",
        "vault_items",
    ]
    search_fields = ["user__email"]
    date_hierarchy = "date"
    list_select_related = ["user"]


@admin.register(ModelExport)
class ModelExportAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "format", "units", "scale", "download_count", "job", "created_at"]
    list_filter = ["format", "units"]
    search_fields = ["user__email", "job__external_id"]
    list_select_related = ["user", "job"]


@admin.register(Project)
class ProjectAdmin(ReadOnlyAdmin):
    """Projects and their lifecycle; the actions move them through `project_transition`, the
    service the API calls (an illegal move is reported, not applied)."""

    list_display = [
        "name",
        "user",
        "status",
        "tooling_applied",
        "processing_time",
        "completed_at",
        "updated_at",
    ]
    list_filter = ["status"]
    search_fields = ["name", "user__email"]
    list_select_related = ["user"]
    actions = ["archive_projects", "restore_projects"]

    def has_operate_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("jobs.change_project")

    @admin.action(description="Archive selected projects", permissions=["operate"])
    def archive_projects(self, request, queryset):
        self._move(request, queryset, Project.Status.ARCHIVED)

    @admin.action(description="Move selected projects back to draft", permissions=["operate"])
    def restore_projects(self, request, queryset):
        self._move(request, queryset, Project.Status.DRAFT)

    def _move(self, request, queryset, to):
        from jobs.services.models3d import project_transition

        done = 0
        for project in queryset.order_by("pk"):
            try:
                project_transition(project=project, to=to)
            except ApplicationError as exc:
                self.message_user(request, f"{project.name}: {exc.message}", messages.WARNING)
            else:
                self.log_change(request, project, f"Status → {to} (admin action)")
                done += 1
        self.message_user(request, f"Moved {done} project(s) to {to}.", messages.SUCCESS)
