from celery import shared_task
from django.core.management import call_command

from accounts import services
from config.scheduled import period_key, scheduled_run


@shared_task(
    name="accounts.expire_licenses", queue="default", time_limit=300, soft_time_limit=270, ignore_result=True
)
def expire_licenses() -> dict | None:
    """Daily: licenses and subscriptions whose end has passed become expired (idempotent)."""
    with scheduled_run("accounts.expire_licenses", period_key=period_key("day")) as run:
        if run is None:
            return None
        run.counts = {
            "licenses": services.licenses_expire(),
            "subscriptions": services.subscriptions_expire(),
        }
    return run.counts


@shared_task(
    name="accounts.flush_expired_tokens",
    queue="default",
    time_limit=600,
    soft_time_limit=570,
    ignore_result=True,
)
def flush_expired_tokens() -> None:
    """Daily: drop expired outstanding/blacklisted JWTs (simplejwt's own command)."""
    with scheduled_run("accounts.flush_expired_tokens", period_key=period_key("day")) as run:
        if run is None:
            return
        call_command("flushexpiredtokens")
        run.counts = {"flushed": True}
