from celery import shared_task

from shops import services


@shared_task(name="shops.cleanup_stock_history", queue="default", time_limit=1800, soft_time_limit=1700)
def cleanup_stock_history(older_than_days: int = 365) -> int:
    """Monthly (06:00 UTC on the 1st): drop stock history older than a year, chain kept intact.
    Safe to run twice: a second run finds nothing left to delete."""
    return services.stock_history_cleanup(older_than_days=older_than_days)
