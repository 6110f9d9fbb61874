from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.models import License, Subscription, SubscriptionPlan, User
from accounts.tasks import expire_licenses, flush_expired_tokens
from tests.accounts.conftest import register_payload
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_trial_license_from_registration_lasts_exactly_30_days(api_client):
    before = timezone.now()
    api_client.post("/api/auth/register", register_payload(), format="json")
    after = timezone.now()

    lic = License.objects.get(user__email="new.person@example.com")
    assert (lic.type, lic.status) == ("trial", "active")
    assert lic.date_end - lic.date_start == timedelta(days=30)
    assert before <= lic.date_start <= after


def _license(user, *, ends_in: timedelta, status=License.Status.ACTIVE):
    now = timezone.now()
    License.objects.filter(user=user).update(date_start=now - timedelta(days=31), date_end=now + ends_in)
    if status != License.Status.ACTIVE:  # through the one writer: the database refuses a bare update
        services.license_transition(license=License.objects.get(user=user), to=status)
    return License.objects.get(user=user)


def _subscription(user, *, ends_in: timedelta, status=Subscription.Status.ACTIVE, **fields):
    """A live subscription of the seeded monthly plan, moved to end `ends_in` from now."""
    now = timezone.now()
    sub = services.subscription_activate(
        user_id=user.pk, plan=SubscriptionPlan.objects.get(code="premium_monthly")
    )
    if status != Subscription.Status.ACTIVE:  # through the one writer: a bare update is refused
        services.subscription_transition(subscription=sub, to=status)
    Subscription.objects.filter(pk=sub.pk).update(
        start_date=now - timedelta(days=40),
        end_date=now + ends_in,
        past_due_since=now - timedelta(days=4) if status == Subscription.Status.PAST_DUE else None,
        **fields,
    )
    return sub


def test_expiry_task_expires_ended_licenses_only():
    ended, running, suspended = UserFactory(), UserFactory(), UserFactory()
    _license(ended, ends_in=-timedelta(seconds=1))
    _license(running, ends_in=timedelta(days=1))
    _license(suspended, ends_in=-timedelta(days=1), status=License.Status.SUSPENDED)

    result = expire_licenses()

    assert result["licenses"] == 1
    assert License.objects.get(user=ended).status == "expired"
    assert License.objects.get(user=running).status == "active"
    assert License.objects.get(user=suspended).status == "suspended"


def test_expiry_task_ends_lapsed_subscriptions_and_returns_their_users_to_the_free_tier():
    # given: one cancelled at period end whose period is over, one renewing but unpaid for longer
    # than the grace period, one past due for longer than the grace, and three still covered
    cancelled, unpaid, past_due = UserFactory(), UserFactory(), UserFactory()
    paying, in_grace, renewing = UserFactory(), UserFactory(), UserFactory()
    now = timezone.now()
    cancelled_sub = _subscription(
        cancelled, ends_in=-timedelta(minutes=1), auto_renew=False, cancelled_at=now
    )
    unpaid_sub = _subscription(unpaid, ends_in=-timedelta(days=3, minutes=1))
    past_due_sub = _subscription(past_due, ends_in=-timedelta(days=4), status=Subscription.Status.PAST_DUE)
    paying_sub = _subscription(paying, ends_in=timedelta(days=3))
    in_grace_sub = _subscription(in_grace, ends_in=-timedelta(days=1), status=Subscription.Status.PAST_DUE)
    Subscription.objects.filter(pk=in_grace_sub.pk).update(past_due_since=now - timedelta(days=1))
    renewing_sub = _subscription(renewing, ends_in=-timedelta(days=1))

    # when
    result = expire_licenses()

    # then
    assert result["subscriptions"] == 3
    statuses = dict(Subscription.objects.values_list("pk", "status"))
    assert statuses[cancelled_sub.pk] == "cancelled"
    assert statuses[unpaid_sub.pk] == "expired" and statuses[past_due_sub.pk] == "expired"
    assert statuses[paying_sub.pk] == "active" and statuses[renewing_sub.pk] == "active"
    assert statuses[in_grace_sub.pk] == "past_due"
    for user in (cancelled, unpaid, past_due):
        user.refresh_from_db()
        assert (user.tier, user.model_limit) == ("free", 5)
    for user in (paying, in_grace, renewing):
        user.refresh_from_db()
        assert (user.tier, user.model_limit) == ("premium", 100)


def test_the_database_holds_one_live_subscription_per_user():
    user = UserFactory()
    _subscription(user, ends_in=timedelta(days=3))

    with pytest.raises(IntegrityError):
        Subscription.objects.create(
            user=user,
            amount=Decimal("1.00"),
            start_date=timezone.now(),
            end_date=timezone.now() + timedelta(days=1),
            status=Subscription.Status.PAST_DUE,
            past_due_since=timezone.now(),
        )


def test_expiry_task_is_idempotent():
    user = UserFactory()
    _subscription(user, ends_in=-timedelta(days=4))
    _license(user, ends_in=-timedelta(days=1))  # after: activating the subscription sets the license's end
    first = expire_licenses()
    snapshot = (
        list(License.objects.values()),
        list(Subscription.objects.values()),
        list(User.objects.values("tier", "model_limit")),
    )

    second = expire_licenses()

    assert first == {"licenses": 1, "subscriptions": 1}
    assert second is None  # the same day's run is recorded once (ScheduledRun) and not repeated
    assert services.licenses_expire() == 0 and services.subscriptions_expire() == 0  # idempotent
    assert snapshot == (
        list(License.objects.values()),
        list(Subscription.objects.values()),
        list(User.objects.values("tier", "model_limit")),
    )


def test_expiry_task_runs_through_celery_apply():
    user = UserFactory()
    _license(user, ends_in=-timedelta(days=1))

    result = expire_licenses.apply()

    assert result.successful() and result.result["licenses"] == 1


def test_database_refuses_a_license_that_ends_before_it_starts(user):
    now = timezone.now()
    with pytest.raises(IntegrityError):
        License.objects.filter(user=user).update(date_start=now, date_end=now - timedelta(days=1))


def test_token_flush_task_drops_expired_tokens_and_keeps_live_ones(user):
    now = timezone.now()
    OutstandingToken.objects.create(
        user=user,
        jti="expired-jti",
        token="x",
        created_at=now - timedelta(days=30),
        expires_at=now - timedelta(days=1),
    )
    live = RefreshToken.for_user(user)

    flush_expired_tokens()
    flush_expired_tokens()

    assert list(OutstandingToken.objects.values_list("jti", flat=True)) == [live["jti"]]
