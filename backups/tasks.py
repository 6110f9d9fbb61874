"""Backup tasks: thin wrappers around backups.services, each periodic one recorded
once per period with config.scheduled.scheduled_run. Time limits stay below the broker's
visibility timeout (2 h), so Redis never hands a running backup to a second worker."""

from celery import shared_task

from backups import services
from backups.models import BackupLog
from config.scheduled import period_key, scheduled_run

BACKUP_LIMITS = {"time_limit": 110 * 60, "soft_time_limit": 100 * 60}


def _backup_and_check(kind: str, *, restore_test: bool) -> dict:
    backup = services.backup_create(kind=kind)
    counts = {"backup": str(backup.pk), "status": backup.status, "size": backup.size}
    if backup.status != BackupLog.Status.SUCCEEDED:
        raise services.BackupError(f"{kind} backup {backup.pk} failed: {backup.error}")
    services.backup_verify(backup=backup, restore_test=restore_test)
    counts["verified"] = True
    counts["restore_tested"] = restore_test
    counts["offsite"] = {s.target: s.status for s in services.offsite_sync(backup=backup)}
    return counts


@shared_task(name="backups.daily", queue="default", **BACKUP_LIMITS)
def daily_backup():
    """03:00: the daily backup, verified (checksum + pg_restore --list), copied offsite."""
    with scheduled_run("backups.daily", period_key=period_key("day")) as run:
        if run is None:
            return None
        run.counts = _backup_and_check(BackupLog.Kind.DAILY, restore_test=False)
    return run.counts


@shared_task(name="backups.weekly", queue="default", **BACKUP_LIMITS)
def weekly_backup():
    """Sunday 04:00: the weekly backup, restore-tested into a scratch database, copied offsite."""
    with scheduled_run("backups.weekly", period_key=period_key("week")) as run:
        if run is None:
            return None
        run.counts = _backup_and_check(BackupLog.Kind.WEEKLY, restore_test=True)
    return run.counts


@shared_task(name="backups.retention", queue="default", time_limit=20 * 60, soft_time_limit=15 * 60)
def retention():
    """05:00: expired recovery snapshots (>90 days) and backups past their retention."""
    with scheduled_run("backups.retention", period_key=period_key("day")) as run:
        if run is None:
            return None
        snapshots = services.snapshot_cleanup()
        pruned = services.backup_prune()
        run.counts = {"snapshots_deleted": snapshots, "backups_pruned": len(pruned)}
    return run.counts


@shared_task(name="backups.offsite_retry", queue="default", **BACKUP_LIMITS)
def offsite_retry():
    """Hourly: retry offsite copies that are pending or failed."""
    with scheduled_run("backups.offsite_retry", period_key=period_key("hour")) as run:
        if run is None:
            return None
        run.counts = services.offsite_sync_pending()
    return run.counts


@shared_task(name="backups.run_backup", queue="default", **BACKUP_LIMITS)
def run_backup(backup_id: str):
    """A backup queued by staff (API or admin): dump, verify, copy offsite. Safe to run twice:
    a backup no longer `running` is left alone."""
    backup = services.backup_run(backup_id=backup_id)
    if backup.status == BackupLog.Status.SUCCEEDED and backup.verified_at is None:
        services.backup_verify(backup=backup)
        services.offsite_sync(backup=backup)
    return backup.status
