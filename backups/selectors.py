from django.db.models import Prefetch, QuerySet

from backups.models import BackupLog, RecoverySnapshot, SyncStatus


def backup_list() -> QuerySet[BackupLog]:
    """Every backup, newest first, with its offsite copies (one extra query per page)."""
    return BackupLog.objects.order_by("-started_at", "-id").prefetch_related(
        Prefetch("sync_statuses", queryset=SyncStatus.objects.order_by("target"))
    )


def snapshot_list(*, shop) -> QuerySet[RecoverySnapshot]:
    """A shop's snapshots, newest first, without their (possibly large) documents."""
    return (
        RecoverySnapshot.objects.filter(shop=shop)
        .defer("document")
        .select_related("created_by")
        .order_by("-created_at", "-id")
    )
