from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import path, reverse
from django.utils.html import format_html

from config.admin import ReadOnlyAdmin
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


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Staff see and steer jobs; status and credits change only through the services (actions:
    job_retry, job_cancel → job_transition). Status is read-only here, and the database refuses
    a status write that does not come from job_transition anyway."""

    list_display = [
        "external_id",
        "user",
        "kind",
        "status",
        "priority",
        "progress",
        "attempts",
        "credits_charged",
        "credits_refunded",
        "created_at",
    ]
    list_filter = ["status", "kind", "priority", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["external_id", "=id", "user__email"]
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
        "status",
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

    def get_urls(self):
        download = path(
            "<uuid:job_id>/files/<uuid:file_id>/download/",
            self.admin_site.admin_view(self.download_file),
            name="jobs_job_file_download",
        )
        return [download, *super().get_urls()]

    def download_file(self, request, job_id, file_id):
        from jobs.file_apis import job_file_response

        if not self.has_view_permission(request):
            raise PermissionDenied
        job_file = JobFile.objects.filter(pk=file_id, job_id=job_id).first()
        if job_file is None:
            raise Http404("File not found.")
        return job_file_response(job_file)

    def _each(self, request, queryset, action, verb):
        done = 0
        for job in queryset.order_by("pk"):
            try:
                action(job=job)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{job.external_id}: {exc.message}", messages.WARNING)
        self.message_user(request, f"{verb} {done} job(s).", messages.SUCCESS)

    @admin.action(description="Retry selected jobs (failed/cancelled → new job; retrying → now)")
    def retry_jobs(self, request, queryset):
        self._each(request, queryset, services.job_retry, "Retried")

    @admin.action(description="Cancel selected jobs (refunds what was charged)")
    def cancel_jobs(self, request, queryset):
        self._each(request, queryset, services.job_cancel, "Cancelled")


@admin.register(ApiUsageLog)
class ApiUsageLogAdmin(ReadOnlyAdmin):
    list_display = [
        "provider",
        "endpoint",
        "units",
        "cost",
        "duration_ms",
        "status_code",
        "job",
        "created_at",
    ]
    list_filter = ["provider", "status_code"]
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
    list_display = ["name", "user", "created_at", "updated_at"]
    search_fields = ["name", "user__email"]
    list_select_related = ["user"]
