"""Subscriptions: bought like credit packages, activated by the signed webhook,
renewed daily with past-due grace and expiry, cancelled at period end."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Subscription, SubscriptionPlan, User
from accounts.services import subscription_cancel, subscriptions_expire
from accounts.tasks import expire_licenses
from config.signing import sign
from credits.models import CreditTransaction, Payment
from credits.services.payments import payment_complete
from credits.services.subscriptions import subscription_purchase_start, subscriptions_renew
from credits.tasks import renew_subscriptions
from tests.conftest import assert_error, client_for, seed_subscription_plans
from tests.credits.conftest import run_in_threads
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SECRET = "whsec_sub_test"
NOW = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.PAYMENT_WEBHOOK_SECRETS = {
        **settings.PAYMENT_WEBHOOK_SECRETS,
        "promptpay": SECRET,
        "truemoney": SECRET,
    }


def monthly() -> SubscriptionPlan:
    return SubscriptionPlan.objects.get(code="premium_monthly")


def yearly() -> SubscriptionPlan:
    return SubscriptionPlan.objects.get(code="premium_yearly")


def deliver(payment, type="payment.succeeded", *, event_id=None, client=None, **overrides):
    body = json.dumps(
        {
            "event_id": event_id or f"evt_{uuid.uuid4().hex}",
            "type": type,
            "payment_id": str(payment.id),
            "amount": str(payment.amount),
            "currency": payment.currency,
            **overrides,
        }
    ).encode()
    return (client or APIClient()).generic(
        "POST",
        f"/api/webhooks/payments/{payment.provider}",
        body,
        content_type="application/json",
        HTTP_X_SIGNATURE=sign(body, SECRET),
    )


def subscribe(user, plan=None, provider="promptpay") -> Subscription:
    """A user with a paid, active subscription (through the real purchase and webhook path)."""
    payment = subscription_purchase_start(user=user, plan=plan or monthly(), provider=provider)
    assert deliver(payment).status_code == 200
    return Subscription.objects.get(user=user, status__in=Subscription.LIVE_STATUSES)


def tier(user) -> tuple[str, int]:
    user.refresh_from_db()
    return user.tier, user.model_limit


# -- plans and purchase -------------------------------------------------------------------------


def test_plans_are_seeded_in_thb_and_listed_publicly(api_client):
    response = api_client.get("/api/subscriptions/plans")

    assert response.status_code == 200
    plans = {p["code"]: p for p in response.json()["results"]}
    assert set(plans) == {"premium_monthly", "premium_yearly"}
    assert plans["premium_monthly"]["price"] == "299.00" and plans["premium_monthly"]["currency"] == "THB"
    assert (
        plans["premium_yearly"]["billing_cycle"] == "yearly" and plans["premium_yearly"]["tier"] == "premium"
    )


def test_buying_a_plan_opens_a_pending_payment_and_no_subscription_yet(auth_client, user):
    response = auth_client.post(
        "/api/subscriptions", {"plan": "premium_monthly", "provider": "promptpay"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["plan"] == "premium_monthly" and body["package_id"] is None
    assert body["amount"] == "299.00" and body["currency"] == "THB" and body["credits"] == 0
    assert body["checkout"]["type"] == "qr" and "5406299.00" in body["checkout"]["qr_payload"]
    assert_error(auth_client.get("/api/subscriptions/current"), 404, "not_found")
    assert tier(user) == ("free", 5)


def test_the_signed_webhook_activates_the_subscription_with_the_plans_tier_and_limit(user):
    with time_machine.travel(NOW, tick=False):
        # the token is minted at the pinned time (one from the real clock would not be valid yet)
        auth_client = client_for(user)
        payment_id = auth_client.post(
            "/api/subscriptions", {"plan": "premium_yearly", "provider": "truemoney"}, format="json"
        ).json()["id"]
        payment = Payment.objects.get(pk=payment_id)

        response = deliver(payment)

    assert response.status_code == 200 and response.json()["status"] == "processed"
    assert tier(user) == ("premium", 100)
    current = client_for(user).get("/api/subscriptions/current").json()
    assert current["plan"] == "premium_yearly" and current["status"] == "active"
    assert current["billing_cycle"] == "yearly" and current["amount"] == "2990.00"
    assert current["start_date"] == "2026-11-10T09:00:00Z" and current["end_date"] == "2027-11-10T09:00:00Z"
    assert current["auto_renew"] is True and current["cancel_at_period_end"] is False
    payment.refresh_from_db()
    assert payment.status == "completed" and str(payment.subscription_id) == current["id"]
    assert not CreditTransaction.objects.filter(user=user).exists()  # a plan grants no credits
    assert client_for(user).get("/api/users/me").json()["subscription"]["plan"] == "premium_yearly"


def test_a_redelivered_or_repeated_success_activates_once(user):
    payment = subscription_purchase_start(user=user, plan=monthly(), provider="promptpay")
    first = deliver(payment, event_id="evt_1")
    end = Subscription.objects.get(user=user).end_date

    again = deliver(payment, event_id="evt_1")
    other_event = deliver(payment, event_id="evt_2")

    assert first.json()["status"] == "processed"
    assert again.json()["status"] == "duplicate"
    assert other_event.json()["status"] == "processed"  # applied, but the payment is already completed
    assert Subscription.objects.filter(user=user).count() == 1
    assert Subscription.objects.get(user=user).end_date == end


def test_a_second_purchase_while_active_and_renewing_is_409(auth_client, user):
    subscribe(user)

    response = auth_client.post(
        "/api/subscriptions", {"plan": "premium_yearly", "provider": "promptpay"}, format="json"
    )

    assert_error(response, 409, "already_subscribed")
    assert Payment.objects.filter(user=user).count() == 1


def test_paying_again_after_cancelling_extends_the_period_and_renews_again(user):
    with time_machine.travel(NOW, tick=False):
        sub = subscribe(user)
        subscription_cancel(user=user)
        payment = subscription_purchase_start(user=user, plan=monthly(), provider="promptpay")
        deliver(payment)

    sub.refresh_from_db()
    assert sub.end_date == datetime(2027, 1, 10, 9, 0, tzinfo=UTC)  # two months from the start
    assert sub.auto_renew is True and sub.cancelled_at is None and sub.status == "active"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"plan": "premium_monthly"},
        {"provider": "promptpay"},
        {"plan": "premium_weekly", "provider": "promptpay"},
        {"plan": "premium_monthly", "provider": "free"},
        {"plan": "premium_monthly", "provider": "paypal"},
        {"plan": 12, "provider": "promptpay"},
        {"plan": ["premium_monthly"], "provider": "promptpay"},
        {"plan": "premium monthly\x00", "provider": "promptpay"},
        {"plan": "p" * 500, "provider": "promptpay"},
    ],
)
def test_bad_purchase_input_is_400_in_the_envelope_and_creates_nothing(auth_client, payload):
    assert_error(auth_client.post("/api/subscriptions", payload, format="json"), 400, "validation_error")
    assert Payment.objects.count() == 0


@pytest.mark.parametrize("raw", [b"[]", b'"x"', b"not json", b"\xff\xfe", b"null"])
def test_non_object_bodies_are_400(auth_client, raw):
    response = auth_client.generic("POST", "/api/subscriptions", raw, content_type="application/json")
    assert_error(response, 400)
    assert Payment.objects.count() == 0


def test_an_inactive_plan_cannot_be_bought(auth_client):
    SubscriptionPlan.objects.filter(code="premium_monthly").update(is_active=False)

    response = auth_client.post(
        "/api/subscriptions", {"plan": "premium_monthly", "provider": "promptpay"}, format="json"
    )

    assert_error(response, 400, "validation_error")
    assert "plan" in response.json()["error"]["fields"]


def test_anonymous_callers_get_401_on_every_subscription_endpoint(api_client):
    assert_error(api_client.post("/api/subscriptions", {"plan": "premium_monthly"}, format="json"), 401)
    assert_error(api_client.get("/api/subscriptions/current"), 401)
    assert_error(api_client.post("/api/subscriptions/current/cancel"), 401)


def test_another_users_subscription_is_invisible_and_uncancellable(user, other_client, auth_client):
    sub = subscribe(user)

    assert_error(other_client.get("/api/subscriptions/current"), 404, "not_found")
    assert_error(other_client.post("/api/subscriptions/current/cancel"), 404, "not_found")
    assert_error(other_client.get(f"/api/credits/payments/{sub.payments.get().pk}"), 404)
    sub.refresh_from_db()
    assert sub.cancelled_at is None and sub.auto_renew is True
    assert auth_client.get("/api/subscriptions/current/").json()["id"] == str(sub.pk)  # trailing slash too


# -- cancel at period end --------------------------------------------------------------------------


def test_cancel_keeps_the_tier_until_the_period_ends_then_the_daily_task_cancels(user):
    with time_machine.travel(NOW, tick=False):
        sub = subscribe(user)
        first = client_for(user).post("/api/subscriptions/current/cancel")
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        second = client_for(user).post("/api/subscriptions/current/cancel")

    assert first.status_code == 200 and first.json()["cancel_at_period_end"] is True
    assert first.json()["status"] == "active" and first.json()["auto_renew"] is False
    assert second.json()["cancelled_at"] == first.json()["cancelled_at"] == "2026-11-10T09:00:00Z"
    assert tier(user) == ("premium", 100)

    with time_machine.travel(datetime(2026, 12, 10, 9, 0, 1, tzinfo=UTC), tick=False):
        assert subscriptions_renew() == {"renewals": 0, "failed": 0}  # a cancelled one never renews
        assert subscriptions_expire() == 1

    sub.refresh_from_db()
    assert sub.status == "cancelled" and tier(user) == ("free", 5)
    assert_error(client_for(user).get("/api/subscriptions/current"), 404)


# -- renewal, past due, expiry -----------------------------------------------------------------------


def test_renewal_opens_one_pending_payment_per_period_and_its_success_extends_the_period(user):
    with time_machine.travel(NOW, tick=False):
        sub = subscribe(user, provider="truemoney")
    due = datetime(2026, 12, 10, 10, 0, tzinfo=UTC)

    with time_machine.travel(due, tick=False):
        assert subscriptions_renew() == {"renewals": 1, "failed": 0}
        assert subscriptions_renew() == {"renewals": 0, "failed": 0}  # idempotent
        renewal = Payment.objects.get(subscription=sub, period_start=sub.end_date)
        assert (
            renewal.status == "pending"
            and renewal.provider == "truemoney"
            and renewal.amount == Decimal("299.00")
        )
        assert renewal.metadata["checkout"]["type"] == "deeplink"
        deliver(renewal)

    sub.refresh_from_db()
    assert sub.status == "active" and sub.end_date == datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
    assert sub.next_billing_date == sub.end_date and tier(user) == ("premium", 100)
    assert Subscription.objects.filter(user=user).count() == 1


def test_a_failed_renewal_is_past_due_with_three_days_of_grace_then_expired_and_free(user):
    with time_machine.travel(NOW, tick=False):
        sub = subscribe(user)
    User.objects.filter(pk=user.pk).update(models_used=40)
    failed_at = datetime(2026, 12, 10, 10, 0, tzinfo=UTC)
    with time_machine.travel(failed_at, tick=False):
        subscriptions_renew()
        renewal = Payment.objects.get(subscription=sub, period_start__isnull=False)
        deliver(renewal, "payment.failed", failure_reason="card declined")

    sub.refresh_from_db()
    assert sub.status == "past_due" and sub.past_due_since == failed_at
    assert tier(user) == ("premium", 100)  # grace: still premium

    with time_machine.travel(failed_at + timedelta(days=2, hours=23), tick=False):
        assert subscriptions_expire() == 0
    with time_machine.travel(failed_at + timedelta(days=3), tick=False):
        assert subscriptions_expire() == 1
        assert subscriptions_expire() == 0

    sub.refresh_from_db()
    user.refresh_from_db()
    assert sub.status == "expired" and (user.tier, user.model_limit) == ("free", 5)
    assert user.models_used == 40  # models already imported stay


def test_paying_during_the_grace_period_reactivates_from_the_old_anchor(user):
    with time_machine.travel(NOW, tick=False):
        sub = subscribe(user)
    with time_machine.travel(datetime(2026, 12, 10, 10, 0, tzinfo=UTC), tick=False):
        subscriptions_renew()
        renewal = Payment.objects.get(subscription=sub, period_start__isnull=False)
        deliver(renewal, "payment.failed")
    with time_machine.travel(datetime(2026, 12, 11, 10, 0, tzinfo=UTC), tick=False):
        deliver(renewal)  # the customer retried and the provider reports success

    sub.refresh_from_db()
    assert sub.status == "active" and sub.past_due_since is None
    assert sub.end_date == datetime(2027, 1, 10, 9, 0, tzinfo=UTC)


def test_a_renewal_whose_checkout_cannot_be_created_fails_and_makes_the_subscription_past_due(user, settings):
    settings.STRIPE_SECRET_KEY = ""
    with time_machine.travel(NOW, tick=False):
        sub = subscribe(user)
    # the subscription was paid through Stripe, which is no longer configured here
    Payment.objects.filter(subscription=sub).update(provider="stripe")

    with time_machine.travel(datetime(2026, 12, 10, 10, 0, tzinfo=UTC), tick=False):
        assert subscriptions_renew() == {"renewals": 1, "failed": 1}

    renewal = Payment.objects.get(subscription=sub, period_start__isnull=False)
    assert renewal.status == "failed" and "not configured" in renewal.failure_reason
    sub.refresh_from_db()
    assert sub.status == "past_due"


def test_an_unpaid_renewal_expires_three_days_after_the_period_end(user):
    with time_machine.travel(NOW, tick=False):
        sub = subscribe(user)
    with time_machine.travel(datetime(2026, 12, 10, 10, 0, tzinfo=UTC), tick=False):
        subscriptions_renew()
    with time_machine.travel(datetime(2026, 12, 13, 8, 59, tzinfo=UTC), tick=False):
        assert subscriptions_expire() == 0
    with time_machine.travel(datetime(2026, 12, 13, 9, 0, tzinfo=UTC), tick=False):
        assert subscriptions_expire() == 1

    sub.refresh_from_db()
    assert sub.status == "expired" and tier(user) == ("free", 5)


def test_renewal_task_records_its_run_once_per_day(user):
    with time_machine.travel(NOW, tick=False):
        subscribe(user)
    with time_machine.travel(datetime(2026, 12, 10, 10, 0, tzinfo=UTC), tick=False):
        first = renew_subscriptions.apply().result
        second = renew_subscriptions.apply().result

    assert first == {"renewals": 1, "failed": 0} and second is None


# -- license_expired on model imports ---------------------------------------------------------------


def _expire_trial(user):
    user.license.date_end = timezone.now() - timedelta(days=1)
    user.license.date_start = timezone.now() - timedelta(days=31)
    user.license.save()
    expire_licenses()


def _import(client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    cube = b"v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n"
    upload = SimpleUploadedFile("cube.obj", cube, content_type="application/octet-stream")
    return client.post("/api/jobs", {"kind": "model_import", "input": upload}, format="multipart")


@pytest.fixture
def model_kinds(db):
    from jobs.models import JobKind
    from jobs.seed import CURRENT_SEED_KINDS

    for kind in CURRENT_SEED_KINDS:
        JobKind.objects.get_or_create(code=kind["code"], defaults=kind)


def test_an_expired_trial_without_a_subscription_refuses_model_imports_with_license_expired(
    auth_client, user, model_kinds
):
    from jobs.models import Job

    _expire_trial(user)

    assert_error(_import(auth_client), 403, "license_expired")
    assert Job.objects.count() == 0
    user.refresh_from_db()
    assert user.models_used == 0


def test_a_trial_past_its_end_is_refused_even_before_the_daily_task_marks_it(auth_client, user, model_kinds):
    user.license.date_end = timezone.now() - timedelta(seconds=1)
    user.license.date_start = timezone.now() - timedelta(days=31)
    user.license.save()

    assert_error(_import(auth_client), 403, "license_expired")


def test_an_expired_trial_with_a_subscription_imports(auth_client, user, model_kinds):
    _expire_trial(user)
    subscribe(user)

    response = _import(auth_client)

    assert response.status_code == 201, response.content


def test_after_downgrade_new_imports_over_the_free_limit_are_refused(auth_client, user, model_kinds):
    with time_machine.travel(NOW, tick=False):
        subscribe(user)
        subscription_cancel(user=user)
    User.objects.filter(pk=user.pk).update(models_used=7)
    with time_machine.travel(datetime(2026, 12, 10, 9, 0, tzinfo=UTC), tick=False):
        subscriptions_expire()

    assert_error(_import(auth_client), 403, "model_limit_reached")
    user.refresh_from_db()
    assert (user.tier, user.model_limit, user.models_used) == ("free", 5, 7)


# -- concurrency (real threads, real transactions) ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_deliveries_of_distinct_success_events_activate_once():
    seed_subscription_plans()
    user = UserFactory()
    payment = subscription_purchase_start(user=user, plan=monthly(), provider="promptpay")

    results = run_in_threads(
        lambda i: deliver(payment, event_id=f"evt_{i}").status_code, [(i,) for i in range(10)]
    )

    assert results == [200] * 10
    (sub,) = Subscription.objects.filter(user=user)
    assert sub.status == "active"
    assert sub.end_date == monthly().period_end(sub.start_date)  # one period, not ten
    assert tier(user) == ("premium", 100)


@pytest.mark.django_db(transaction=True)
def test_two_plan_payments_completing_concurrently_give_one_subscription_two_periods_long():
    seed_subscription_plans()
    user = UserFactory()
    payments = [
        subscription_purchase_start(user=user, plan=monthly(), provider="promptpay") for _ in range(2)
    ]

    with time_machine.travel(NOW, tick=False):
        results = run_in_threads(lambda p: payment_complete(payment=p).status, [(p,) for p in payments])

    assert results == ["completed", "completed"]
    (sub,) = Subscription.objects.filter(user=user)
    assert sub.end_date == datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
    assert {p.subscription_id for p in Payment.objects.filter(user=user)} == {sub.pk}


@pytest.mark.django_db(transaction=True)
def test_concurrent_renewal_runs_open_exactly_one_payment_for_the_period():
    seed_subscription_plans()
    user = UserFactory()
    with time_machine.travel(NOW, tick=False):
        sub = subscribe(user)

    with time_machine.travel(datetime(2026, 12, 10, 10, 0, tzinfo=UTC), tick=False):
        results = run_in_threads(lambda: subscriptions_renew(), [()] * 6)

    assert sum(r["renewals"] for r in results) == 1, results
    assert Payment.objects.filter(subscription=sub, period_start=sub.end_date).count() == 1


@pytest.mark.django_db(transaction=True)
def test_expiry_racing_a_late_grace_payment_never_leaves_a_paid_subscription_expired():
    seed_subscription_plans()
    user = UserFactory()
    with time_machine.travel(NOW, tick=False):
        sub = subscribe(user)
    with time_machine.travel(datetime(2026, 12, 10, 10, 0, tzinfo=UTC), tick=False):
        subscriptions_renew()
        renewal = Payment.objects.get(subscription=sub, period_start__isnull=False)
        deliver(renewal, "payment.failed")

    # at the very end of the grace period, the expiry and the customer's payment arrive together
    with time_machine.travel(datetime(2026, 12, 13, 10, 0, tzinfo=UTC), tick=False):
        results = run_in_threads(
            lambda job: subscriptions_expire() if job == "expire" else deliver(renewal).status_code,
            [("expire",), ("pay",), ("expire",)],
        )

    sub.refresh_from_db()
    renewal.refresh_from_db()
    assert renewal.status == "completed", results
    if sub.status == "expired":
        # the expiry won the race: the payment then started a fresh subscription
        live = Subscription.objects.get(user=user, status="active")
        assert live.pk != sub.pk and tier(user) == ("premium", 100)
    else:
        assert sub.status == "active" and tier(user) == ("premium", 100)
    assert Subscription.objects.filter(user=user, status__in=Subscription.LIVE_STATUSES).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_cancels_cancel_once_and_keep_the_subscription_live():
    seed_subscription_plans()
    user = UserFactory()
    subscribe(user)
    client = client_for(user)

    def cancel():
        return client_for(User.objects.get(pk=user.pk)).post("/api/subscriptions/current/cancel").status_code

    results = run_in_threads(cancel, [()] * 8)

    assert results == [200] * 8
    sub = Subscription.objects.get(user=user)
    assert sub.status == "active" and sub.auto_renew is False and sub.cancelled_at is not None
    assert client.get("/api/subscriptions/current").json()["cancel_at_period_end"] is True
