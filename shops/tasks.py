from celery import shared_task

from config.scheduled import period_key, scheduled_run
from shops import services
from shops.notifications import send_shop_plan_email  # noqa: F401  (registers the task with the worker)
from shops.services.plans import shop_plans_expire, shop_plans_remind, shop_plans_renew


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


@shared_task(
    name="shops.deliver_message",
    queue="default",
    time_limit=120,
    soft_time_limit=100,
    ignore_result=True,
)
def deliver_message(message_id: str) -> str:
    """Deliver one outbound chat message through its channel (shops.services.delivery). Safe to
    run twice: the message is claimed before the call and sent at most once."""
    return services.message_deliver(message_id=message_id)


@shared_task(
    name="shops.reannounce_deliveries",
    queue="default",
    time_limit=300,
    soft_time_limit=280,
    ignore_result=True,
)
def reannounce_deliveries() -> dict | None:
    """Every minute: queue again the channel deliveries a lost Celery message left pending, and
    settle claims whose task died mid-call (shops.services.delivery.message_delivery_reannounce).
    Once per minute; a second run of the same minute is a no-op (and would be harmless: the
    claim decides who sends)."""
    with scheduled_run("shops.reannounce_deliveries", period_key=period_key("minute")) as run:
        if run is None:
            return None
        run.counts = services.message_delivery_reannounce()
    return run.counts


@shared_task(
    name="shops.renew_plans", queue="default", time_limit=600, soft_time_limit=570, ignore_result=True
)
def renew_plans() -> dict | None:
    """Daily: open the renewal payment of every auto-renewing shop plan whose period ends within
    RENEWAL_REMINDER_DAYS, email each owner its checkout (`reminded`), then expire those past
    their grace period (or not renewing) to the free plan. Safe to run twice."""
    with scheduled_run("shops.renew_plans", period_key=period_key("day")) as run:
        if run is None:
            return None
        run.counts = {**shop_plans_renew(), "reminded": shop_plans_remind(), "expired": shop_plans_expire()}
    return run.counts
