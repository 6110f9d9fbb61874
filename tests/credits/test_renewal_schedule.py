"""The subscription renewal and reminder schedules as deployed: synced into django-celery-beat,
dispatched by Beat's own code with their stored options, run by a real worker."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from config.celery import app as celery_app
from config.models import ScheduledRun
from credits.models import EmailSent, Payment
from tests.config.test_schedules_as_deployed import _wait, worker  # noqa: F401 (the worker fixture)
from tests.conftest import seed_subscription_plans
from tests.credits.test_subscriptions import NOW, subscribe
from tests.factories import UserFactory

DUE = datetime(2026, 12, 10, 10, 0, 5, tzinfo=UTC)


def _dispatch(task: str) -> None:
    scheduler = DatabaseScheduler(app=celery_app, lazy=True)
    scheduler.apply_async(ModelEntry(PeriodicTask.objects.get(task=task), app=celery_app), advance=False)


@pytest.fixture(autouse=True)
def _secrets(settings):
    from tests.credits.test_subscriptions import SECRET

    settings.PAYMENT_WEBHOOK_SECRETS = {**settings.PAYMENT_WEBHOOK_SECRETS, "promptpay": SECRET}


def _wait_succeeded(task: str, what: str) -> None:
    """Wait until a run of the scheduled `task` has succeeded (its ScheduledRun row)."""
    _wait(lambda: ScheduledRun.objects.filter(task=task, outcome="succeeded").exists(), what)


@pytest.mark.django_db(transaction=True)
def test_beat_dispatches_the_renewal_and_a_real_worker_opens_one_payment_per_period(worker):  # noqa: F811
    # given a monthly subscription whose period ended, and the schedules as a deployment writes them
    seed_subscription_plans()
    user = UserFactory()
    with time_machine.travel(NOW, tick=False):
        sub = subscribe(user)
    call_command("sync_schedules", verbosity=0)
    celery_app.loader.import_default_modules()

    with time_machine.travel(DUE, tick=True):
        # when Beat fires the daily renewal, twice (a double fire, a manual "run now")
        _dispatch("credits.renew_subscriptions")
        _wait_succeeded("credits.renew_subscriptions", "the renewal run to succeed")
        _dispatch("credits.renew_subscriptions")
        _dispatch("accounts.expire_licenses")
        _wait_succeeded("accounts.expire_licenses", "the expiry run to succeed")

    # then exactly one pending renewal payment exists for the new period, and the subscription
    # (still inside its grace period) is untouched by the expiry run
    renewal = Payment.objects.get(subscription=sub, period_start__isnull=False)
    assert renewal.status == "pending" and renewal.period_start == sub.end_date
    run = ScheduledRun.objects.get(task="credits.renew_subscriptions")
    assert run.counts == {"renewals": 1, "failed": 0} and run.attempts == 1
    sub.refresh_from_db()
    assert sub.status == "active"


@pytest.mark.django_db(transaction=True)
def test_beat_dispatches_the_reminder_after_the_renewal_and_a_real_worker_mails_it_once(
    worker,  # noqa: F811
    mailoutbox,
    settings,
):
    # given a monthly subscription ending in two days and a bit, and the deployed schedules
    settings.FRONTEND_URL = "https://app.example.com"
    seed_subscription_plans()
    user = UserFactory()
    with time_machine.travel(NOW, tick=False):
        sub = subscribe(user)
    call_command("sync_schedules", verbosity=0)
    celery_app.loader.import_default_modules()
    assert PeriodicTask.objects.get(task="credits.remind_renewals").queue == "default"
    ahead = sub.end_date - timedelta(days=2, hours=8, minutes=55)

    with time_machine.travel(ahead, tick=True):
        # when Beat fires the renewal (00:05), then the reminder (00:20), which fires twice
        _dispatch("credits.renew_subscriptions")
        _wait_succeeded("credits.renew_subscriptions", "the renewal run to succeed")
        _dispatch("credits.remind_renewals")
        _dispatch("credits.remind_renewals")
        _wait(
            lambda: any("renews on" in m.subject for m in mailoutbox),
            "the reminder to be delivered",
        )
        _wait_succeeded("credits.remind_renewals", "the reminder run to succeed")

    # then the renewal opened three days early, and one reminder links where to pay it
    renewal = Payment.objects.get(subscription=sub, period_start=sub.end_date)
    assert renewal.status == "pending"
    [reminder] = [m for m in mailoutbox if "renews on" in m.subject]
    assert reminder.to == [user.email]
    assert "https://app.example.com/account/subscription" in reminder.body
    run = ScheduledRun.objects.get(task="credits.remind_renewals")
    assert run.counts == {"reminded": 1} and run.attempts == 1
    assert EmailSent.objects.filter(user=user, kind="renewal_upcoming").count() == 1
