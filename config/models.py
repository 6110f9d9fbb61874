"""Abstract bases every app's models share, and the platform's own tables (ScheduledRun)."""

import uuid

from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class UUIDModel(TimeStampedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)

    class Meta:
        abstract = True


class ScheduledRun(UUIDModel):
    """One run of a periodic task for one period.

    Unique per (task, period_key): a second run of the same period finds the row and does
    nothing, so Beat firing twice, a manual "run now" and a retried message are all harmless.
    A failed run may be run again (it takes the row over); a succeeded or running one may not.
    """

    class Outcome(models.TextChoices):
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    task = models.CharField(max_length=200)
    period_key = models.CharField(max_length=64, help_text="e.g. 2026-11-22, 2026-W47, 2026-11-22T10:15")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["task", "period_key"], name="scheduledrun_task_period_unique"),
        ]
        indexes = [models.Index(fields=["task", "-started_at"], name="scheduledrun_task_recent")]

    def __str__(self):
        return f"{self.task} [{self.period_key}] {self.outcome}"

    @property
    def duration(self):
        return (self.finished_at - self.started_at) if self.finished_at else None


class IdempotencyRecord(UUIDModel):
    """The first answer to a create sent with an `Idempotency-Key` header (config/idempotency.py).

    Unique per (owner, scope, key): concurrent retries wait on the unique index for the first
    request's transaction and then read its answer. Only 2xx answers are stored; a refusal
    rolls the record back with everything else, so the client may retry with the same key.
    """

    owner = models.CharField(max_length=64, blank=True)  # the user's id, "" when anonymous
    scope = models.CharField(max_length=255)  # "POST /api/credits/purchases"
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # sha256 of the request's data
    status_code = models.PositiveSmallIntegerField(default=0)
    body = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "scope", "key"], name="idempotency_record_unique_key")
        ]

    def __str__(self):
        return f"{self.scope} {self.key}"
