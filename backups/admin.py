from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect
from django.urls import path, reverse

from backups import services
from backups.models import BackupLog, RecoverySnapshot, SyncStatus
from config.admin import ReadOnlyAdmin


class SyncStatusInline(admin.TabularInline):
    model = SyncStatus
    extra = 0
    can_delete = False
    fields = readonly_fields = ["target", "status", "synced_at", "lag", "attempts", "error"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(BackupLog)
class BackupLogAdmin(ReadOnlyAdmin):
    """Backups with their verification and offsite copies; the changelist's "Start a manual
    backup" button queues one (the same service and task the API uses)."""

    change_list_template = "admin/backups/backuplog/change_list.html"
    list_display = [
        "started_at",
        "kind",
        "status",
        "size",
        "duration",
        "verified",
        "restore_tested",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["=id", "file_name"]
    date_hierarchy = "started_at"
    inlines = [SyncStatusInline]
    readonly_fields = [f.name for f in BackupLog._meta.fields]

    # The list fits 1366 px: whether the dump was verified and restore-tested as a tick (the
    # admin never wraps a date or a heading); the times and the database are on the row's page.
    @admin.display(description="verified", ordering="verified_at", boolean=True)
    def verified(self, obj):
        return obj.verified_at is not None

    @admin.display(description="restore tested", ordering="restore_tested_at", boolean=True)
    def restore_tested(self, obj):
        return obj.restore_tested_at is not None

    def has_start_permission(self, request):
        return request.user.has_perm("backups.add_backuplog")

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_start_backup": self.has_start_permission(request)}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        return [
            path("start/", self.admin_site.admin_view(self.start_view), name="backups_backuplog_start"),
            *super().get_urls(),
        ]

    def start_view(self, request):
        if not self.has_start_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return redirect(reverse("admin:backups_backuplog_changelist"))
        from backups.tasks import run_backup

        backup = services.backup_start(kind=BackupLog.Kind.MANUAL, created_by=request.user)
        transaction.on_commit(lambda: run_backup.delay(str(backup.pk)))
        self.log_addition(request, backup, "queued a manual backup")
        self.message_user(request, f"Manual backup {backup.pk} queued.", messages.SUCCESS)
        return redirect(reverse("admin:backups_backuplog_changelist"))


@admin.register(SyncStatus)
class SyncStatusAdmin(ReadOnlyAdmin):
    list_display = ["backup", "target", "status", "synced_at", "lag", "attempts"]
    list_filter = ["status", "target"]
    list_select_related = ["backup"]
    date_hierarchy = "created_at"


@admin.register(RecoverySnapshot)
class RecoverySnapshotAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "shop", "size", "created_by", "expires_at", "restored_at", "note"]
    list_select_related = ["shop", "created_by"]
    search_fields = ["shop__name", "shop__slug"]
    date_hierarchy = "created_at"
    exclude = ["document"]
    readonly_fields = ["shop", "sha256", "size", "note", "created_by", "expires_at", "restored_at"]
