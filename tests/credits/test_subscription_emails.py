"""Subscription lifecycle emails: renewal in RENEWAL_REMINDER_DAYS (with the checkout that pays
the renewal), renewal failed, expired, cancelled. Each once per event and period, after commit,
delivered by a real worker; the reminder and the expiry honour the email opt-out, the failure
and the cancellation do not."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction

from accounts.models import Subscription
from accounts.services import subscription_cancel, subscription_transition, subscriptions_expire
from credits.models import EmailSent, Payment
from credits.services.subscriptions import (
    subscription_purchase_start,
    subscription_remind,
    subscriptions_remind,
    subscriptions_renew,
)
from tests.config.test_schedules_as_deployed import _wait
from tests.conftest import client_for, finished_tasks, queued_messages, seed_subscription_plans
from tests.credits.conftest import email_kinds as kinds
from tests.credits.conftest import email_opt_out as opt_out
from tests.credits.conftest import run_in_threads
from tests.credits.test_providers import (
    STRIPE_SESSIONS,
    STRIPE_WHSEC,
    remote,  # noqa: F401  (the fixture: the local gateway)
    stripe_event,
    stripe_session,
    to_stripe,
)
from tests.credits.test_subscriptions import SECRET, deliver, monthly
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

BOUGHT = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
END = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)  # a month after BOUGHT
REMIND = END - timedelta(days=2, hours=8)  # the daily run inside the three days before the end
PAGE = "https://app.example.com/account/subscription"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.PAYMENT_WEBHOOK_SECRETS = {
        **settings.PAYMENT_WEBHOOK_SECRETS,
        "truemoney": SECRET,
        "stripe": STRIPE_WHSEC,
    }
    settings.STRIPE_SECRET_KEY = "sk_test_123"
    settings.FRONTEND_URL = "https://app.example.com"
    settings.RENEWAL_REMINDER_DAYS = 3
    seed_subscription_plans()


def subscribe(user, provider="truemoney") -> Subscription:
    with time_machine.travel(BOUGHT, tick=False):
        payment = subscription_purchase_start(user=user, plan=monthly(), provider=provider)
        assert deliver(payment).status_code == 200
    sub = Subscription.objects.get(user=user, status="active")
    assert sub.end_date == END
    return sub


def emails_queued(callbacks) -> list:
    """The after-commit callbacks that would queue a lifecycle email."""
    return [c for c in callbacks if c.__module__ == "credits.emails"]


# -- renewal in three days ------------------------------------------------------------------------


def test_the_reminder_links_the_stripe_checkout_of_the_renewal_opened_three_days_early(user, remote, sent):  # noqa: F811
    # given a subscription paid through Stripe (checkout on the local gateway, signed webhook)
    remote.post(STRIPE_SESSIONS, json=stripe_session("cs_test_first"))
    with time_machine.travel(BOUGHT, tick=False):
        bought = subscription_purchase_start(user=user, plan=monthly(), provider="stripe")
        assert to_stripe(client_for(user), stripe_event(bought)).json()["status"] == "processed"
    sub = Subscription.objects.get(user=user, status="active")
    remote.post(STRIPE_SESSIONS, json=stripe_session("cs_test_renewal"))

    # when the daily renewal, then the daily reminder, run within three days of the end (twice)
    with time_machine.travel(REMIND, tick=False), sent.capture():
        assert subscriptions_renew(now=REMIND) == {"renewals": 1, "failed": 0}
        assert subscriptions_remind(now=REMIND) == {"reminded": 1}
        assert subscriptions_remind(now=REMIND) == {"reminded": 0}

    # then one email, linking the Stripe checkout that pays the pending renewal
    renewal = Payment.objects.get(subscription=sub, period_start=END)
    assert renewal.status == "pending"
    [*_, message] = sent.wait(2)  # the payment-received email came first
    assert message.to == [user.email]
    assert "renews on 2026-12-10 09:00 UTC" in message.subject and "299.00 THB" in message.subject
    assert "https://checkout.stripe.com/c/pay/cs_test_renewal" in message.body
    assert kinds(user) == ["renewal_upcoming"]
    html = message.alternatives[0][0]
    assert 'href="https://checkout.stripe.com/c/pay/cs_test_renewal"' in html


def test_paying_the_renewal_early_extends_from_the_end_and_the_next_period_gets_its_own_reminder(user):
    sub = subscribe(user)
    subscriptions_renew(now=REMIND)
    subscription_remind(subscription_id=sub.pk, now=REMIND)
    renewal = Payment.objects.get(subscription=sub, period_start=END)

    with time_machine.travel(REMIND, tick=False):
        assert deliver(renewal).status_code == 200  # paid two days before the end
    sub.refresh_from_db()
    assert sub.end_date == datetime(2027, 1, 10, 9, 0, tzinfo=UTC)

    next_reminder = sub.end_date - timedelta(days=1)
    assert subscription_remind(subscription_id=sub.pk, now=REMIND) is False  # not due any more
    assert subscription_remind(subscription_id=sub.pk, now=next_reminder) is True
    assert list(
        EmailSent.objects.filter(kind="renewal_upcoming").order_by("period").values_list("period", flat=True)
    ) == [
        "2026-12-10T09:00:00+00:00",
        "2027-01-10T09:00:00+00:00",
    ]


def test_without_an_http_checkout_the_reminder_links_the_subscription_page(user, sent):
    subscribe(user)  # TrueMoney: its checkout is an app deeplink, shown on the page

    with sent.capture():
        subscriptions_renew(now=REMIND)
        assert subscriptions_remind(now=REMIND) == {"reminded": 1}

    [*_, message] = sent.wait(2)
    assert PAGE in message.body and "ascendmoney://" not in message.body


def test_no_reminder_outside_the_three_days_nor_for_a_cancelled_subscription(user):
    sub = subscribe(user)

    assert subscriptions_remind(now=END - timedelta(days=3, seconds=1)) == {"reminded": 0}
    assert subscriptions_remind(now=END) == {"reminded": 0}  # the period has ended
    subscription_cancel(user=user, now=REMIND - timedelta(hours=1))
    assert subscriptions_remind(now=REMIND) == {"reminded": 0}
    assert kinds(user) == ["subscription_cancelled"]
    assert Payment.objects.filter(subscription=sub, period_start__isnull=False).count() == 0


def test_eight_concurrent_reminders_of_one_period_record_one_email_and_send_one(user, sent, mailoutbox):
    with finished_tasks() as done:
        sub = subscribe(user)
        _wait(lambda: done, "the payment-received email to be sent")
    mailoutbox.clear()

    with finished_tasks() as finished:
        results = run_in_threads(lambda: subscription_remind(subscription_id=sub.pk, now=REMIND), [()] * 8)
        [message] = sent.wait(1)
        _wait(lambda: finished, "the worker to finish the one task queued")

    assert sorted(results) == [False] * 7 + [True]
    assert EmailSent.objects.filter(user=user, kind="renewal_upcoming").count() == 1
    assert queued_messages("default") == 0 and len(mailoutbox) == 1
    assert "renews on" in message.subject


# -- renewal failed -----------------------------------------------------------------------------


def test_a_failed_renewal_mails_once_with_the_grace_end_even_to_a_user_who_opted_out(user, sent):
    sub = subscribe(user)
    opt_out(user)
    failed_at = END + timedelta(hours=1)
    with time_machine.travel(failed_at, tick=False), sent.capture():
        subscriptions_renew(now=failed_at)
        renewal = Payment.objects.get(subscription=sub, period_start=END)
        assert deliver(renewal, "payment.failed", event_id="evt_f1").status_code == 200
        assert deliver(renewal, "payment.failed", event_id="evt_f2").status_code == 200  # again

    [*_, message] = sent.wait(2)
    sub.refresh_from_db()
    assert sub.status == "past_due"
    assert "renewal failed" in message.subject and "2026-12-13 10:00 UTC" in message.subject
    assert PAGE in message.body  # the failed checkout cannot be paid: the page offers a new one
    assert kinds(user) == ["renewal_failed"]


def test_a_renewal_refused_before_the_end_keeps_the_grace_from_the_end(user, settings):
    sub = subscribe(user)
    # paid through Stripe, which is no longer configured here: the renewal's checkout is refused
    Payment.objects.filter(subscription=sub).update(provider="stripe")
    settings.STRIPE_SECRET_KEY = ""

    assert subscriptions_renew(now=REMIND) == {"renewals": 1, "failed": 1}

    sub.refresh_from_db()
    assert sub.status == "past_due" and sub.past_due_since == END
    assert subscriptions_expire(now=END + timedelta(days=3) - timedelta(seconds=1)) == 0
    assert subscriptions_expire(now=END + timedelta(days=3)) == 1
    assert kinds(user) == ["renewal_failed", "subscription_expired"]


# -- expired --------------------------------------------------------------------------------------


def test_an_unpaid_subscription_that_expires_mails_once(user, sent):
    subscribe(user)
    subscriptions_renew(now=REMIND)
    with sent.capture():
        assert subscriptions_expire(now=END + timedelta(days=3)) == 1
        assert subscriptions_expire(now=END + timedelta(days=4)) == 0

    [*_, message] = sent.wait(2)
    assert message.subject == "Your Premium (monthly) subscription has expired"
    assert "ended on 2026-12-10 09:00 UTC" in message.body
    assert kinds(user) == ["subscription_expired"]


@pytest.mark.django_db  # in the test's transaction, so the after-commit callbacks are captured
def test_reminder_and_expiry_respect_the_opt_out(user, django_capture_on_commit_callbacks):
    subscribe(user)
    opt_out(user)

    with django_capture_on_commit_callbacks() as callbacks:
        subscriptions_renew(now=REMIND)
        assert subscriptions_remind(now=REMIND) == {"reminded": 0}
        assert subscriptions_expire(now=END + timedelta(days=3)) == 1

    assert kinds(user) == [] and emails_queued(callbacks) == []


# -- cancelled ------------------------------------------------------------------------------------


def test_cancelling_twice_mails_once_and_the_end_of_the_period_mails_nothing_more(user, sent):
    opt_out(user)  # the cancellation is transactional
    sub = subscribe(user)
    client = client_for(user)

    with sent.capture():
        first = client.post("/api/subscriptions/current/cancel")
        again = client.post("/api/subscriptions/current/cancel")
        assert subscriptions_expire(now=END) == 1  # the period ends: `cancelled`, no second email

    assert first.status_code == again.status_code == 200
    [*_, message] = sent.wait(2)
    sub.refresh_from_db()
    assert sub.status == "cancelled"
    assert (
        message.subject == "Your Premium (monthly) subscription is cancelled and ends on 2026-12-10 09:00 UTC"
    )
    assert kinds(user) == ["subscription_cancelled"]


def test_staff_cancelling_outright_mails_that_it_has_ended(user, sent):
    sub = subscribe(user)

    with sent.capture():
        subscription_transition(subscription=sub, to=Subscription.Status.CANCELLED, now=REMIND)

    [*_, message] = sent.wait(2)
    assert message.subject == "Your Premium (monthly) subscription has been cancelled"
    assert "free plan" in message.body


@pytest.mark.django_db  # in the test's transaction, so the after-commit callbacks are captured
def test_a_transition_that_rolls_back_records_and_sends_nothing(user, django_capture_on_commit_callbacks):
    sub = subscribe(user)
    other = UserFactory()
    subscribe(other)

    with django_capture_on_commit_callbacks() as callbacks:
        for action in (
            lambda: subscription_transition(subscription=sub, to=Subscription.Status.PAST_DUE, now=REMIND),
            lambda: subscription_cancel(user=other, now=REMIND),
            lambda: subscription_remind(subscription_id=sub.pk, now=REMIND),
        ):
            try:
                with transaction.atomic():
                    action()
                    raise RuntimeError("the request failed after the change")
            except RuntimeError:
                pass

    assert emails_queued(callbacks) == []
    assert not EmailSent.objects.exclude(kind="payment_received").exists()
    sub.refresh_from_db()
    assert sub.status == "active"
