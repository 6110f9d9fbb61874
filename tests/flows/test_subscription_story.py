"""A subscriber's story through the public API with a live worker: they buy premium_monthly
through Stripe (the checkout on the local gateway, the signed webhook), get the payment email
with the receipt, are reminded three days before the renewal with the checkout that pays it,
cancel and are told when the plan ends, and the daily expiry ends it — each email once."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import call_command
from rest_framework.test import APIClient

from config.celery import app as celery_app
from config.models import ScheduledRun
from credits.models import EmailSent, Payment
from tests.config.test_schedules_as_deployed import _wait, worker  # noqa: F401 (the worker fixture)
from tests.conftest import seed_subscription_plans
from tests.credits.test_providers import (
    STRIPE_SESSIONS,
    STRIPE_WHSEC,
    remote,  # noqa: F401 (the fixture: the local gateway)
    stripe_event,
    stripe_session,
    to_stripe,
)
from tests.credits.test_renewal_schedule import _dispatch

PASSWORD = "Flow-story-pass-42"
EMAIL = "subscriber@example.com"
BOUGHT = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
END = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
REMINDED = datetime(2026, 12, 8, 0, 20, 3, tzinfo=UTC)  # the first daily run within 3 days of it
EXPIRY = datetime(2026, 12, 11, 0, 10, 3, tzinfo=UTC)  # the daily 00:10 run after the end


@pytest.fixture(autouse=True)
def _stripe(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_story"
    settings.PAYMENT_WEBHOOK_SECRETS = {**settings.PAYMENT_WEBHOOK_SECRETS, "stripe": STRIPE_WHSEC}
    settings.FRONTEND_URL = "https://app.example.com"


def login(client: APIClient) -> APIClient:
    token = client.post("/api/auth/token", {"email": EMAIL, "password": PASSWORD}, format="json")
    assert token.status_code == 200, token.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['access']}")
    return client


def mail(mailoutbox, words: str):
    _wait(lambda: any(words in m.subject for m in mailoutbox), f"the email '{words}'")
    [message] = [m for m in mailoutbox if words in m.subject]
    return message


def run_as_beat(task: str) -> None:
    _dispatch(task)
    _wait(
        lambda: ScheduledRun.objects.filter(task=task, outcome="succeeded").exists(),
        f"{task} to succeed on the worker",
    )


@pytest.mark.django_db(transaction=True)
def test_subscriber_pays_is_reminded_with_the_checkout_cancels_and_the_plan_ends(
    api_client,
    remote,  # noqa: F811
    worker,  # noqa: F811
    mailoutbox,
):
    seed_subscription_plans()
    call_command("sync_schedules", verbosity=0)
    celery_app.loader.import_default_modules()

    with time_machine.travel(BOUGHT, tick=True):
        # given a new customer
        registered = api_client.post(
            "/api/auth/register",
            {"email": EMAIL, "password": PASSWORD, "password_confirm": PASSWORD, "name": "Subscriber"},
            format="json",
        )
        assert registered.status_code == 201, registered.content
        client = login(api_client)

        # when they buy premium_monthly through Stripe and Stripe's signed webhook confirms it
        remote.post(STRIPE_SESSIONS, json=stripe_session("cs_story_first"))
        bought = client.post(
            "/api/subscriptions", {"plan": "premium_monthly", "provider": "stripe"}, format="json"
        )
        assert bought.status_code == 201, bought.content
        assert bought.json()["checkout"]["url"] == "https://checkout.stripe.com/c/pay/cs_story_first"
        paid = to_stripe(APIClient(), stripe_event(Payment.objects.get(pk=bought.json()["id"])))
        assert paid.json()["status"] == "processed", paid.content

        # then they are premium and get the payment email with the receipt / tax invoice
        current = client.get("/api/subscriptions/current").json()
        assert current["status"] == "active" and current["auto_renew"] is True
        receipt_mail = mail(mailoutbox, "Payment received: 299.00 THB")
        [(filename, _, mimetype)] = receipt_mail.attachments
        assert filename.startswith("INV-2026-") and mimetype == "application/pdf"

    with time_machine.travel(REMINDED, tick=True):
        # when the daily renewal and reminder run three days before the end, as Beat runs them
        remote.post(STRIPE_SESSIONS, json=stripe_session("cs_story_renewal"))
        run_as_beat("credits.renew_subscriptions")
        run_as_beat("credits.remind_renewals")

        # then the reminder links the Stripe checkout of the renewal, opened for the next period
        reminder = mail(mailoutbox, "renews on 2026-12-10 09:00 UTC")
        assert "https://checkout.stripe.com/c/pay/cs_story_renewal" in reminder.body
        client = login(api_client)
        renewal = client.get("/api/credits/payments", {"status": "pending"}).json()
        renewal = renewal["results"] if isinstance(renewal, dict) else renewal
        assert [p["checkout"]["url"] for p in renewal] == [
            "https://checkout.stripe.com/c/pay/cs_story_renewal"
        ]

        # when they cancel instead (the app sends it twice)
        cancelled = client.post("/api/subscriptions/current/cancel")
        again = client.post("/api/subscriptions/current/cancel")
        assert cancelled.status_code == again.status_code == 200
        assert cancelled.json()["auto_renew"] is False and cancelled.json()["status"] == "active"

        # then one email says when the plan ends
        cancel_mail = mail(mailoutbox, "is cancelled and ends on 2026-12-10 09:00 UTC")
        assert cancel_mail.to == [EMAIL]

    with time_machine.travel(EXPIRY, tick=True):
        # when the daily expiry runs after the end
        run_as_beat("accounts.expire_licenses")

        # then the plan has ended, they are on the free tier, and nothing more was mailed
        client = login(api_client)
        assert client.get("/api/subscriptions/current").status_code == 404
        me = client.get("/api/users/me").json()
        assert me["tier"] == "free"

    sent = sorted(EmailSent.objects.filter(user__email=EMAIL).values_list("kind", flat=True))
    assert sent == ["payment_received", "renewal_upcoming", "subscription_cancelled"]
    assert ScheduledRun.objects.get(task="accounts.expire_licenses").counts["subscriptions"] == 1
