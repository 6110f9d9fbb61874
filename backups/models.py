"""Backups: database dumps with their verification, offsite copies, shop snapshots.

A BackupLog row is the only record that a dump exists: its `file_name` is set only after the
whole archive reached storage and pg_dump exited 0, so a row that names a file names a complete
one. Row counts are taken in the same snapshot as the dump, so a restore test compares exactly.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from config.models import UUIDModel
from config.status_guard import status_guard

# The transaction-local setting through which `backup_transition` authorises its one status
# write (backups/states.py; the guard trigger on BackupLog reads it).
BACKUP_STATUS_SETTING = "backups.backup_transition"


class BackupLog(UUIDModel):
    """One backup. `status` moves only through `backups.services.backup_transition` (the table is
    in backups/states.py; a trigger refuses any other write)."""

    class Kind(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        MANUAL = "manual", "Manual"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.MANUAL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    size = models.BigIntegerField(null=True, blank=True, help_text="bytes")
    sha256 = models.CharField(max_length=64, blank=True, default="")
    storage = models.CharField(max_length=100, default="backups", help_text="Django storage alias")
    file_name = models.CharField(max_length=500, blank=True, default="")
    database = models.CharField(max_length=200, blank=True, default="")
    pg_dump_version = models.CharField(max_length=200, blank=True, default="")
    server_version = models.CharField(max_length=200, blank=True, default="")
    row_counts = models.JSONField(default=dict, blank=True, help_text="table → rows, at dump time")
    verified_at = models.DateTimeField(null=True, blank=True)
    restore_tested_at = models.DateTimeField(null=True, blank=True)
    restore_test_result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["daily", "weekly", "manual"]), name="backup_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["running", "succeeded", "failed"]), name="backup_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="succeeded") | (~Q(file_name="") & ~Q(sha256="")),
                name="backup_succeeded_has_file",
            ),
        ]
        indexes = [models.Index(fields=["status", "kind", "-started_at"], name="backup_status_kind_idx")]
        triggers = [
            status_guard(
                name="backup_status_guard",
                setting=BACKUP_STATUS_SETTING,
                writer="backups.services.backup_transition",
            ),
        ]

    def __str__(self):
        return f"{self.kind} backup {self.started_at:%Y-%m-%d %H:%M} ({self.status})"


class SyncStatus(UUIDModel):
    """One offsite copy of one backup to one storage alias."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SYNCED = "synced", "Synced"
        FAILED = "failed", "Failed"

    backup = models.ForeignKey(BackupLog, on_delete=models.CASCADE, related_name="sync_statuses")
    target = models.CharField(max_length=100, help_text="Django storage alias")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    synced_at = models.DateTimeField(null=True, blank=True)
    lag = models.DurationField(null=True, blank=True, help_text="from the end of the backup to the copy")
    attempts = models.IntegerField(default=0)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "target"]
        verbose_name_plural = "sync statuses"
        constraints = [
            models.UniqueConstraint(fields=["backup", "target"], name="sync_status_one_per_target"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "synced", "failed"]), name="sync_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["status", "target"], name="sync_status_status_idx")]

    def __str__(self):
        return f"{self.backup_id} → {self.target} ({self.status})"


class RecoverySnapshot(UUIDModel):
    """A logical snapshot of one shop's catalogue (items with stock, forms, payment methods,
    keyword and saved replies), stored as a JSON document with its sha256."""

    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="recovery_snapshots")
    document = models.JSONField()
    sha256 = models.CharField(max_length=64)
    size = models.IntegerField(help_text="bytes of the canonical JSON document")
    note = models.CharField(max_length=300, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(db_index=True)
    restored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["shop", "-created_at"], name="snapshot_shop_recent_idx")]

    def __str__(self):
        return f"snapshot of {self.shop_id} at {self.created_at:%Y-%m-%d %H:%M}"
