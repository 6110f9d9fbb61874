from django.core.management.base import CommandError

from backups.models import BackupLog, RecoverySnapshot


def get_backup(backup_id: str | None) -> BackupLog:
    if backup_id is None:
        backup = (
            BackupLog.objects.filter(status=BackupLog.Status.SUCCEEDED).order_by("-started_at", "-id").first()
        )
        if backup is None:
            raise CommandError("No succeeded backup yet.")
        return backup
    try:
        return BackupLog.objects.get(pk=backup_id)
    except (BackupLog.DoesNotExist, ValueError, Exception) as exc:
        raise CommandError(f"No backup {backup_id!r}.") from exc


def get_snapshot(snapshot_id: str) -> RecoverySnapshot:
    try:
        return RecoverySnapshot.objects.select_related("shop").get(pk=snapshot_id)
    except Exception as exc:
        raise CommandError(f"No snapshot {snapshot_id!r}.") from exc
