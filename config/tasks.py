"""The platform's own periodic task: keeping the ScheduledRun record a readable size."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from config.models import ScheduledRun
from config.scheduled import period_key, scheduled_run


@shared_task(
    name="platform.prune_scheduled_runs",
    queue="default",
    time_limit=300,
    soft_time_limit=270,
    ignore_result=True,
)
def prune_scheduled_runs() -> int | None:
    """Daily: delete succeeded runs older than SCHEDULED_RUN_KEEP_DAYS (the every-minute rescue
    alone writes 1,440 a day). Failed runs are kept until staff look at them. Idempotent."""
    with scheduled_run("platform.prune_scheduled_runs", period_key=period_key("day")) as run:
        if run is None:
            return None
        cutoff = timezone.now() - timedelta(days=settings.SCHEDULED_RUN_KEEP_DAYS)
        deleted, _ = ScheduledRun.objects.filter(
            outcome=ScheduledRun.Outcome.SUCCEEDED, started_at__lt=cutoff
        ).delete()
        run.counts = {"deleted": deleted}
    return deleted
