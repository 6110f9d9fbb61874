from celery import shared_task

from config.scheduled import period_key, scheduled_run
from shops import services


@shared_task(
    name="shops.cleanup_stock_history",
    queue="default",
    time_limit=1800,
    soft_time_limit=1700,
    ignore_result=True,
)
def cleanup_stock_history(older_than_days: int = 365) -> int | None:
    """Monthly (06:00 UTC on the 1st): drop stock history older than a year, chain kept intact.
    Safe to run twice: a second run finds nothing left to delete."""
    with scheduled_run("shops.cleanup_stock_history", period_key=period_key("month")) as run:
        if run is None:
            return None
        run.counts = {"deleted": services.stock_history_cleanup(older_than_days=older_than_days)}
    return run.counts["deleted"]
