from celery import shared_task
from django.core.management import call_command

from accounts import services


@shared_task(name="accounts.expire_licenses", queue="default", time_limit=300)
def expire_licenses() -> dict:
    """Daily: licenses and subscriptions whose end has passed become expired (idempotent)."""
    return {"licenses": services.licenses_expire(), "subscriptions": services.subscriptions_expire()}


@shared_task(name="accounts.flush_expired_tokens", queue="default", time_limit=600)
def flush_expired_tokens() -> None:
    """Daily: drop expired outstanding/blacklisted JWTs (simplejwt's own command)."""
    call_command("flushexpiredtokens")
