from uuid import UUID

from django.core.management.base import CommandError

from backups.models import BackupLog, RecoverySnapshot
from config.commands import UsageError


def get_backup(backup_id: UUID | None) -> BackupLog:
    """The backup `backup_id` (UsageError when there is none), or without an id the newest
    succeeded one (CommandError when there is none yet)."""
    if backup_id is None:
        backup = (
            BackupLog.objects.filter(status=BackupLog.Status.SUCCEEDED).order_by("-started_at", "-id").first()
        )
        if backup is None:
            raise CommandError("No succeeded backup yet.")
        return backup
    backup = BackupLog.objects.filter(pk=backup_id).first()
    if backup is None:
        raise UsageError(f"No backup {backup_id}.")
    return backup


def get_snapshot(snapshot_id: UUID) -> RecoverySnapshot:
    snapshot = RecoverySnapshot.objects.select_related("shop").filter(pk=snapshot_id).first()
    if snapshot is None:
        raise UsageError(f"No snapshot {snapshot_id}.")
    return snapshot
