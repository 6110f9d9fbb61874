"""Licenses mean something: every user has one however created; `paid` while a subscription is
live (expired with it); a license staff suspended or cancelled refuses every new job."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.models import License, Subscription, SubscriptionPlan, User
from credits.services import credits_grant
from jobs.models import Job, JobKind
from jobs.seed import CURRENT_SEED_KINDS
from tests.conftest import assert_error, client_for
from tests.factories import UserFactory, admin_login

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def job_kinds():
    for kind in CURRENT_SEED_KINDS:
        JobKind.objects.get_or_create(code=kind["code"], defaults=kind)


def monthly():
    return SubscriptionPlan.objects.get(code="premium_monthly")


# -- every user has one ----------------------------------------------------------------------------


def test_create_user_and_createsuperuser_give_a_trial_license(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "Super-Password-77")
    with time_machine.travel(NOW, tick=False):
        plain = User.objects.create_user("plain@example.com", "Plain-Password-77")
        call_command("createsuperuser", "--noinput", "--email", "root@example.com", stdout=StringIO())

    for user in (plain, User.objects.get(email="root@example.com")):
        license = License.objects.get(user=user)
        assert (license.type, license.status) == ("trial", "active")
        assert (license.date_start, license.date_end) == (NOW, NOW + timedelta(days=30))


def test_a_user_added_in_the_admin_has_a_license():
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    admin_login(client, staff)

    response = client.post(
        reverse("admin:accounts_user_add"),
        {"email": "added@example.com", "password1": "Added-Password-77", "password2": "Added-Password-77"},
    )

    assert response.status_code == 302, response.content
    assert License.objects.get(user__email="added@example.com").type == "trial"


# -- paid while a subscription is live ------------------------------------------------------------


def test_a_subscription_makes_the_license_paid_until_its_end_plus_grace_and_its_end_expires_it():
    with time_machine.travel(NOW, tick=False):
        user = UserFactory()
        sub = services.subscription_activate(user_id=user.pk, plan=monthly())
    license = License.objects.get(user=user)
    assert (license.type, license.status) == ("paid", "active")
    assert license.date_end == sub.end_date + timedelta(days=3)

    # a failed renewal: past due, the license stays paid through the grace days
    with time_machine.travel(sub.end_date, tick=False):
        services.subscription_payment_failed(subscription_id=sub.pk, period_start=sub.end_date)
    assert License.objects.get(user=user).status == "active"

    with time_machine.travel(sub.end_date + timedelta(days=4), tick=False):
        services.subscriptions_expire()
    license = License.objects.get(user=user)
    assert Subscription.objects.get(pk=sub.pk).status == "expired"
    assert (license.type, license.status) == ("paid", "expired")
    assert license.date_end == sub.end_date + timedelta(days=4)


def test_a_subscription_bought_after_the_trial_expired_reactivates_the_license():
    user = UserFactory()
    License.objects.filter(user=user).update(
        date_start=NOW - timedelta(days=40), date_end=NOW - timedelta(days=10)
    )
    with time_machine.travel(NOW, tick=False):
        assert services.licenses_expire() == 1
        sub = services.subscription_activate(user_id=user.pk, plan=monthly())

    license = License.objects.get(user=user)
    assert (license.type, license.status, license.date_end) == (
        "paid",
        "active",
        sub.end_date + timedelta(days=3),
    )


def test_a_suspended_license_stays_suspended_when_a_subscription_is_paid():
    user = UserFactory()
    services.license_transition(license=License.objects.get(user=user), to="suspended")

    services.subscription_activate(user_id=user.pk, plan=monthly())

    license = License.objects.get(user=user)
    assert (license.type, license.status) == ("paid", "suspended")


# -- suspended and cancelled licenses refuse new jobs ----------------------------------------------


@pytest.mark.parametrize(
    "status, code", [("suspended", "license_suspended"), ("cancelled", "license_cancelled")]
)
def test_a_suspended_or_cancelled_license_refuses_every_new_job(job_kinds, status, code):
    user = UserFactory()
    credits_grant(user=user, amount=10, idempotency_key="g")
    services.license_transition(license=License.objects.get(user=user), to=status)

    response = client_for(user).post(
        "/api/jobs", {"kind": "account_batch", "requested_count": 1}, format="json"
    )

    assert_error(response, 403, code)
    assert not Job.objects.filter(user=user).exists()


def test_a_reinstated_license_takes_jobs_again(job_kinds):
    user = UserFactory()
    credits_grant(user=user, amount=10, idempotency_key="g")
    license = services.license_transition(license=License.objects.get(user=user), to="suspended")
    services.license_transition(license=license, to="active")

    response = client_for(user).post(
        "/api/jobs", {"kind": "account_batch", "requested_count": 1}, format="json"
    )

    assert response.status_code == 201, response.content
