"""Backup services: views, tasks, admin and commands call these."""

from backups.services.dumps import (  # noqa: F401
    BackupError,
    backup_create,
    backup_latest_verified,
    backup_prune,
    backup_prune_plan,
    backup_restore,
    backup_run,
    backup_start,
    backup_transition,
    backup_verify,
    offsite_sync,
    offsite_sync_pending,
)
from backups.services.pitr import pitr_backups, pitr_restore  # noqa: F401
from backups.services.snapshots import (  # noqa: F401
    snapshot_cleanup,
    snapshot_cleanup_plan,
    snapshot_create,
    snapshot_restore,
)
