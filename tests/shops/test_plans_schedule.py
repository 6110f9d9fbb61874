"""The shop plan renewal schedule as deployed: synced into django-celery-beat, dispatched by
Beat's own code with its stored options, run by a real worker."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from config.celery import app as celery_app
from config.models import ScheduledRun
from shops.models import ShopPlanPayment
from tests.config.test_schedules_as_deployed import _wait, worker  # noqa: F401 (the worker fixture)
from tests.credits.test_subscriptions import SECRET
from tests.shops.factories import make_shop
from tests.shops.test_plans import NOW, buy, seed_shop_plans

DUE = datetime(2026, 12, 10, 10, 0, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.PAYMENT_WEBHOOK_SECRETS = {**settings.PAYMENT_WEBHOOK_SECRETS, "promptpay": SECRET}


def _dispatch(task: str) -> None:
    scheduler = DatabaseScheduler(app=celery_app, lazy=True)
    scheduler.apply_async(ModelEntry(PeriodicTask.objects.get(task=task), app=celery_app), advance=False)


@pytest.mark.django_db(transaction=True)
def test_beat_dispatches_the_shop_plan_renewal_and_a_real_worker_opens_one_payment(worker):  # noqa: F811
    # given a shop on a monthly plan whose period ended, and the schedules as a deployment writes them
    seed_shop_plans()
    shop = make_shop()
    with time_machine.travel(NOW, tick=False):
        sub = buy(shop)
    call_command("sync_schedules", verbosity=0)
    celery_app.loader.import_default_modules()

    with time_machine.travel(DUE, tick=True):
        # when Beat fires the daily task twice (a double fire, a manual "run now")
        _dispatch("shops.renew_plans")
        _wait(
            lambda: ScheduledRun.objects.filter(task="shops.renew_plans", outcome="succeeded").exists(),
            "the shop plan renewal run to succeed",
        )
        _dispatch("shops.renew_plans")

    # then exactly one pending renewal payment exists for the new period; the plan is still active
    link = ShopPlanPayment.objects.get(subscription=sub, period_start__isnull=False)
    assert link.payment.status == "pending" and link.period_start == sub.end_date
    run = ScheduledRun.objects.get(task="shops.renew_plans")
    assert run.counts == {"renewals": 1, "failed": 0, "reminded": 0, "expired": 0} and run.attempts == 1
    sub.refresh_from_db()
    assert sub.status == "active"
