"""Thin Celery tasks over credits services and selectors."""

import logging

from celery import shared_task

from config.scheduled import period_key, scheduled_run
from credits.emails import (  # noqa: F401  (registers the tasks with the worker)
    send_payment_received,
    send_subscription_email,
)
from credits.selectors import credits_audit
from credits.services.subscriptions import subscriptions_remind, subscriptions_renew

logger = logging.getLogger(__name__)


@shared_task(
    name="credits.audit_balances",
    queue="default",
    time_limit=30 * 60,
    soft_time_limit=25 * 60,
    ignore_result=True,
)
def audit_balances() -> int | None:
    """Nightly: check balance = SUM(ledger) and balance >= 0 for every user.

    Read-only, so running it twice is harmless. Each mismatch is logged at ERROR (alerting
    picks it up); returns how many there were.
    """
    with scheduled_run("credits.audit_balances", period_key=period_key("day")) as run:
        if run is None:
            return None
        mismatches = credits_audit()
        for mismatch in mismatches:
            logger.error("credits audit mismatch: %s", mismatch)
        if not mismatches:
            logger.info("credits audit: every balance equals its ledger sum")
        run.counts = {"mismatches": len(mismatches)}
    return len(mismatches)


@shared_task(
    name="credits.renew_subscriptions",
    queue="default",
    time_limit=30 * 60,
    soft_time_limit=25 * 60,
    ignore_result=True,
)
def renew_subscriptions() -> dict | None:
    """Daily: open the renewal payment of every auto-renewing subscription whose period ends
    within RENEWAL_REMINDER_DAYS (or ended already). Once per day (ScheduledRun) and once per
    subscription and period (unique index); ending lapsed subscriptions is
    `accounts.expire_licenses`'s part of the same story."""
    with scheduled_run("credits.renew_subscriptions", period_key=period_key("day")) as run:
        if run is None:
            return None
        run.counts = subscriptions_renew()
    return run.counts


@shared_task(
    name="credits.remind_renewals",
    queue="default",
    time_limit=30 * 60,
    soft_time_limit=25 * 60,
    ignore_result=True,
)
def remind_renewals() -> dict | None:
    """Daily, after `credits.renew_subscriptions`: email the owner of every auto-renewing
    subscription ending within RENEWAL_REMINDER_DAYS, with the checkout of the renewal payment
    that task opened. Once per day (ScheduledRun) and once per subscription and period
    (EmailSent)."""
    with scheduled_run("credits.remind_renewals", period_key=period_key("day")) as run:
        if run is None:
            return None
        run.counts = subscriptions_remind()
    return run.counts
