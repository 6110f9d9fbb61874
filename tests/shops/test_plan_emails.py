"""Shop plan lifecycle emails to the shop's owner: renewal upcoming (with the checkout of the
renewal the daily run opened three days early), renewal failed, expired. Each once per period,
after commit, delivered by a real worker; the reminder and the expiry honour the owner's email
opt-out, the failure does not."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from rest_framework.test import APIClient

from credits.models import EmailSent
from shops.models import ShopPlan, ShopPlanPayment, ShopSubscription
from shops.services.plans import (
    shop_plan_purchase_start,
    shop_plan_remind,
    shop_plans_expire,
    shop_plans_remind,
    shop_plans_renew,
    shop_subscription_transition,
)
from shops.tasks import renew_plans
from tests.config.test_schedules_as_deployed import _wait
from tests.conftest import finished_tasks
from tests.credits.conftest import email_kinds as kinds
from tests.credits.conftest import email_opt_out as opt_out
from tests.credits.conftest import run_in_threads
from tests.credits.test_providers import (
    STRIPE_SESSIONS,
    STRIPE_WHSEC,
    remote,  # noqa: F401 (the fixture: the local gateway)
    stripe_event,
    stripe_session,
    to_stripe,
)
from tests.credits.test_subscriptions import SECRET, deliver
from tests.shops.factories import make_shop
from tests.shops.test_plans import seed_shop_plans

pytestmark = pytest.mark.django_db(transaction=True)

BOUGHT = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
END = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
REMIND = datetime(2026, 12, 8, 0, 15, 3, tzinfo=UTC)  # the daily 00:15 run, within three days


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.PAYMENT_WEBHOOK_SECRETS = {
        **settings.PAYMENT_WEBHOOK_SECRETS,
        "truemoney": SECRET,
        "stripe": STRIPE_WHSEC,
    }
    settings.STRIPE_SECRET_KEY = "sk_test_123"
    settings.FRONTEND_URL = "https://app.example.com"
    seed_shop_plans()


def buy(shop, provider="truemoney") -> ShopSubscription:
    with time_machine.travel(BOUGHT, tick=False):
        payment = shop_plan_purchase_start(
            shop=shop,
            user=shop.owner,
            plan=ShopPlan.objects.get(code="pro"),
            billing_cycle="monthly",
            provider=provider,
        )
        if provider == "stripe":
            assert to_stripe(APIClient(), stripe_event(payment)).json()["status"] == "processed"
        else:
            assert deliver(payment).status_code == 200
    sub = ShopSubscription.objects.get(shop=shop, status="active")
    assert sub.end_date == END
    return sub


def test_the_daily_run_opens_the_renewal_early_and_mails_the_owner_its_checkout_once(remote, sent):  # noqa: F811
    shop = make_shop(name="Noodles")
    remote.post(STRIPE_SESSIONS, json=stripe_session("cs_shop_first"))
    sub = buy(shop, provider="stripe")
    remote.post(STRIPE_SESSIONS, json=stripe_session("cs_shop_renewal"))

    with time_machine.travel(REMIND, tick=False), sent.capture():
        assert renew_plans.apply().result == {"renewals": 1, "failed": 0, "reminded": 1, "expired": 0}
        assert shop_plans_remind(now=REMIND) == 0  # again: already sent for this period

    renewal = ShopPlanPayment.objects.get(subscription=sub, period_start=END).payment
    assert renewal.status == "pending"
    [received, message] = sent.wait(2)  # the first purchase's confirmation, then the reminder
    assert received.subject.startswith("Payment received: 990.00 THB")
    assert "Pro shop plan (monthly) for Noodles" in received.body
    assert message.to == [shop.owner.email]
    assert message.subject == "Noodles: the Pro plan renews on 2026-12-10 09:00 UTC for 990.00 THB"
    assert "https://checkout.stripe.com/c/pay/cs_shop_renewal" in message.body
    assert kinds(shop.owner) == ["renewal_upcoming"]


def test_a_failed_renewal_mails_the_owner_once_even_when_opted_out(sent):
    shop = make_shop(name="Noodles")
    sub = buy(shop)
    opt_out(shop.owner)
    failed_at = END + timedelta(hours=1)

    with time_machine.travel(failed_at, tick=False), sent.capture():
        shop_plans_renew(now=failed_at)
        renewal = ShopPlanPayment.objects.get(subscription=sub, period_start=END).payment
        deliver(renewal, "payment.failed", event_id="evt_shop_f1")
        deliver(renewal, "payment.failed", event_id="evt_shop_f2")

    [*_, message] = sent.wait(2)
    assert "renewal failed" in message.subject and "2026-12-13 10:00 UTC" in message.subject
    assert f"https://app.example.com/shops/{shop.pk}/plan" in message.body
    assert kinds(shop.owner) == ["renewal_failed"]


def test_expiry_mails_the_owner_once_unless_they_opted_out(sent):
    mailed, quiet = make_shop(name="Mailed"), make_shop(name="Quiet")
    buy(mailed)
    buy(quiet)
    opt_out(quiet.owner)
    for shop in (mailed, quiet):
        ShopSubscription.objects.filter(shop=shop).update(auto_renew=False)

    with sent.capture():
        assert shop_plans_expire(now=END) == 2
        assert shop_plans_expire(now=END + timedelta(days=1)) == 0

    message = next(m for m in sent.wait(3) if "expired" in m.subject)
    assert message.subject == "Mailed: the Pro plan has expired" and message.to == [mailed.owner.email]
    assert kinds(mailed.owner) == ["subscription_expired"] and kinds(quiet.owner) == []


def test_eight_concurrent_reminders_record_one_email_and_send_one(sent, mailoutbox):
    shop = make_shop()
    with finished_tasks() as done:
        sub = buy(shop)
        _wait(lambda: done, "the payment-received email to be sent")
    mailoutbox.clear()

    with finished_tasks() as finished:
        results = run_in_threads(lambda: shop_plan_remind(subscription_id=sub.pk, now=REMIND), [()] * 8)
        [message] = sent.wait(1)
        _wait(lambda: finished, "the worker to finish the one task queued")

    assert sorted(results) == [False] * 7 + [True]
    assert EmailSent.objects.filter(kind="renewal_upcoming", object_id=str(sub.pk)).count() == 1
    assert len(mailoutbox) == 1 and "renews on" in message.subject


@pytest.mark.django_db  # in the test's transaction, so the after-commit callbacks are captured
def test_a_move_that_rolls_back_records_and_sends_nothing(django_capture_on_commit_callbacks):
    shop = make_shop()
    sub = buy(shop)

    with django_capture_on_commit_callbacks() as callbacks:
        try:
            with transaction.atomic():
                shop_subscription_transition(subscription=sub, to="past_due", now=REMIND)
                raise RuntimeError("the request failed after the change")
        except RuntimeError:
            pass

    assert [c for c in callbacks if c.__module__ == "shops.notifications"] == []
    assert kinds(shop.owner) == []
