"""The license and subscription state machines: one table each (accounts/states.py), one writer
each (`license_transition`, `subscription_transition`), held by triggers on their tables."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import DatabaseError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import License, Subscription, SubscriptionPlan, User
from accounts.states import LICENSE_TRANSITIONS, SUBSCRIPTION_TRANSITIONS
from config.exceptions import InvalidTransition
from tests.conftest import seed_subscription_plans
from tests.credits.conftest import run_in_threads
from tests.factories import UserFactory, admin_login

pytestmark = pytest.mark.django_db

LICENSE_ALLOWED = [(a, b) for a, targets in LICENSE_TRANSITIONS.items() for b in sorted(targets)]
LICENSE_REFUSED = [
    (a, b) for a in LICENSE_TRANSITIONS for b in LICENSE_TRANSITIONS if b not in LICENSE_TRANSITIONS[a]
]
SUB_ALLOWED = [(a, b) for a, targets in SUBSCRIPTION_TRANSITIONS.items() for b in sorted(targets)]
SUB_REFUSED = [
    (a, b)
    for a in SUBSCRIPTION_TRANSITIONS
    for b in SUBSCRIPTION_TRANSITIONS
    if b not in SUBSCRIPTION_TRANSITIONS[a] and a != b  # moving to its own status returns it unchanged
]


def _license_at(status) -> License:
    license = License.objects.get(user=UserFactory())
    walk = {"active": [], "expired": ["expired"], "suspended": ["suspended"], "cancelled": ["cancelled"]}
    for step in walk[status]:
        license = services.license_transition(license=license, to=step)
    return license


def _subscription_at(status) -> Subscription:
    seed_subscription_plans()  # a transactional test starts without the seeded plans
    user = UserFactory()
    sub = services.subscription_activate(
        user_id=user.pk, plan=SubscriptionPlan.objects.get(code="premium_monthly")
    )
    if status != Subscription.Status.ACTIVE:
        sub = services.subscription_transition(subscription=sub, to=status)
    return sub


@pytest.mark.parametrize(("start", "to"), LICENSE_ALLOWED)
def test_every_license_move_in_the_table_is_allowed(start, to):
    license = _license_at(start)

    moved = services.license_transition(license=license, to=to)

    assert moved.status == to == License.objects.get(pk=license.pk).status


@pytest.mark.parametrize(("start", "to"), LICENSE_REFUSED)
def test_every_license_move_outside_the_table_is_a_409(start, to):
    license = _license_at(start)

    with pytest.raises(InvalidTransition) as caught:
        services.license_transition(license=license, to=to)

    assert (caught.value.status_code, caught.value.code) == (409, "invalid_transition")
    assert License.objects.get(pk=license.pk).status == start


def test_a_reinstated_license_whose_end_has_passed_gets_a_new_end():
    license = _license_at("expired")
    now = timezone.now()
    License.objects.filter(pk=license.pk).update(
        date_start=now - timedelta(days=31), date_end=now - timedelta(days=1)
    )

    moved = services.license_transition(license=license, to="active")

    assert moved.date_end > timezone.now() + timedelta(days=29)
    assert services.licenses_expire() == 0


@pytest.mark.parametrize(("start", "to"), SUB_ALLOWED)
def test_every_subscription_move_in_the_table_is_allowed_and_sets_the_tier(start, to):
    sub = _subscription_at(start)

    moved = services.subscription_transition(subscription=sub, to=to)

    assert moved.status == to == Subscription.objects.get(pk=sub.pk).status
    user = User.objects.get(pk=sub.user_id)
    assert user.tier == ("premium" if to in Subscription.LIVE_STATUSES else "free")


@pytest.mark.parametrize(("start", "to"), SUB_REFUSED)
def test_every_subscription_move_outside_the_table_is_a_409(start, to):
    sub = _subscription_at(start)

    with pytest.raises(InvalidTransition) as caught:
        services.subscription_transition(subscription=sub, to=to)

    assert (caught.value.status_code, caught.value.code) == (409, "invalid_transition")
    assert Subscription.objects.get(pk=sub.pk).status == start


@pytest.mark.parametrize(
    ("make", "model", "to", "writer"),
    [
        (lambda: _license_at("active"), License, "suspended", "license_transition"),
        (lambda: _subscription_at("active"), Subscription, "expired", "subscription_transition"),
    ],
)
def test_bare_status_writes_are_refused_by_the_database(make, model, to, writer):
    row = make()

    with pytest.raises(DatabaseError, match=writer), transaction.atomic():
        model.objects.filter(pk=row.pk).update(status=to)
    row.status = to
    with pytest.raises(DatabaseError, match=writer), transaction.atomic():
        row.save()

    assert model.objects.get(pk=row.pk).status == "active"


def test_a_second_status_write_in_the_transition_transaction_is_refused():
    sub = _subscription_at("active")

    with pytest.raises(DatabaseError, match="subscription_transition"), transaction.atomic():
        services.subscription_transition(subscription=sub, to="past_due")
        Subscription.objects.filter(pk=sub.pk).update(status="active")

    assert Subscription.objects.get(pk=sub.pk).status == "active"


@pytest.mark.django_db(transaction=True)
def test_concurrent_expiries_end_a_subscription_once_and_the_rest_are_409():
    sub = _subscription_at("past_due")

    results = run_in_threads(
        lambda: services.subscription_transition(subscription=sub, to="expired"), [()] * 6
    )

    # the first ends it; the others find it expired already (same status: returned unchanged)
    assert all(isinstance(r, Subscription) and r.status == "expired" for r in results), results
    assert User.objects.get(pk=sub.user_id).tier == "free"


@pytest.mark.django_db(transaction=True)
def test_concurrent_suspend_and_cancel_of_one_license_apply_one_order_of_moves():
    license = _license_at("active")

    results = run_in_threads(
        lambda to: services.license_transition(license=license, to=to), [("suspended",), ("cancelled",)] * 3
    )

    final = License.objects.get(pk=license.pk).status
    assert final == "cancelled"  # cancelled is terminal: whatever the order, it ends there
    assert all(isinstance(r, License | InvalidTransition) for r in results), results


def test_the_license_list_actions_go_through_the_service_and_are_logged():
    admin = User.objects.create_superuser("root@example.com", "Admin-Console-Pass-7")
    client = Client()
    admin_login(client, admin)
    license = _license_at("active")
    url = reverse("admin:accounts_license_changelist")

    client.post(url, {"action": "suspend_licenses", "_selected_action": [license.pk]})
    assert License.objects.get(pk=license.pk).status == "suspended"
    client.post(url, {"action": "suspend_licenses", "_selected_action": [license.pk]})  # refused: 409 message
    client.post(url, {"action": "reinstate_licenses", "_selected_action": [license.pk]})

    assert License.objects.get(pk=license.pk).status == "active"
    assert LogEntry.objects.filter(object_id=str(license.pk)).count() == 2


def test_the_license_and_subscription_status_are_read_only_in_the_admin():
    admin = User.objects.create_superuser("root@example.com", "Admin-Console-Pass-7")
    client = Client()
    admin_login(client, admin)
    license = _license_at("active")
    sub = _subscription_at("active")

    page = client.get(reverse("admin:accounts_license_change", args=[license.pk])).content.decode()
    sub_page = client.get(reverse("admin:accounts_subscription_change", args=[sub.pk])).content.decode()

    assert 'name="status"' not in page and 'name="status"' not in sub_page


def _admin_client() -> Client:
    client = Client()
    admin_login(client, User.objects.create_superuser("ops@example.com", "Admin-Console-Pass-7"))
    return client


@pytest.mark.parametrize(("action", "to"), [("end_now", "cancelled"), ("expire_now", "expired")])
def test_admin_subscription_actions_move_it_through_the_transition_and_drop_the_user_to_free(action, to):
    sub = _subscription_at("active")
    client = _admin_client()

    client.post(
        reverse("admin:accounts_subscription_changelist"), {"action": action, "_selected_action": [sub.pk]}
    )

    sub.refresh_from_db()
    user = User.objects.get(pk=sub.user_id)
    assert sub.status == to and sub.auto_renew is False
    assert (user.tier, user.model_limit) == ("free", 5)
    entry = LogEntry.objects.get(object_id=str(sub.pk))
    assert entry.get_change_message().startswith(f"Subscription active → {to}")


def test_admin_subscription_action_on_an_ended_one_changes_nothing_and_says_why():
    sub = _subscription_at("expired")
    client = _admin_client()

    response = client.post(
        reverse("admin:accounts_subscription_changelist"),
        {"action": "end_now", "_selected_action": [sub.pk]},
        follow=True,
    )

    assert Subscription.objects.get(pk=sub.pk).status == "expired"
    assert not LogEntry.objects.filter(object_id=str(sub.pk)).exists()
    assert any("Cancelled now: 0" in str(m) for m in response.context["messages"])


def test_admin_stop_renewing_keeps_the_tier_until_the_period_ends():
    sub = _subscription_at("active")
    client = _admin_client()

    client.post(
        reverse("admin:accounts_subscription_changelist"),
        {"action": "cancel_at_period_end", "_selected_action": [sub.pk]},
    )

    sub.refresh_from_db()
    assert sub.status == "active" and sub.auto_renew is False and sub.cancelled_at is not None
    assert User.objects.get(pk=sub.user_id).tier == "premium"


def test_admin_offers_no_add_or_delete_of_subscriptions_and_licenses():
    sub = _subscription_at("active")
    client = _admin_client()

    assert client.get(reverse("admin:accounts_subscription_add")).status_code == 403
    assert client.post(reverse("admin:accounts_subscription_delete", args=[sub.pk])).status_code == 403
    license = License.objects.get(user_id=sub.user_id)
    assert client.post(reverse("admin:accounts_license_delete", args=[license.pk])).status_code == 403
    assert Subscription.objects.filter(pk=sub.pk).exists() and License.objects.filter(pk=license.pk).exists()
