"""Thin Celery tasks over analytics services."""

from celery import shared_task

from analytics import services
from config.scheduled import period_key, scheduled_run


@shared_task(name="analytics.generate_daily", queue="default", time_limit=60 * 60, soft_time_limit=55 * 60)
def generate_daily() -> dict | None:
    """02:00 UTC: every shop's last three closed local days and the platform's last three UTC
    days (so a late cancellation lands). Once per UTC day (ScheduledRun); the generation itself
    is idempotent, so a retried failed run is harmless."""
    with scheduled_run("analytics.generate_daily", period_key=period_key("day")) as run:
        if run is None:
            return None
        # First any closed day never generated (a fresh install, a nightly run that stopped).
        # Rows written per table by both passes.
        backfilled = services.metrics_backfill()
        counts = services.metrics_generate_daily()
        run.counts = {key: counts.get(key, 0) + backfilled.get(key, 0) for key in counts | backfilled}
    return run.counts


@shared_task(name="analytics.backfill", queue="default", time_limit=60 * 60, soft_time_limit=55 * 60)
def backfill() -> dict:
    """Generate every closed day that has no metrics yet (analytics.services.metrics_backfill);
    queued by the admin dashboard when it finds such days. Idempotent, safe to run twice."""
    return services.metrics_backfill()
