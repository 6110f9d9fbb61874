from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts import services
from accounts.models import License, Subscription, SubscriptionPlan, User, UserPreferences
from tests.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db

ME = "/api/users/me"


def test_me_shows_plan_usage_progress_balance_license_and_subscription(auth_client, user):
    services.subscription_activate(user_id=user.pk, plan=SubscriptionPlan.objects.get(code="premium_monthly"))

    body = auth_client.get(ME).json()

    assert body["id"] == str(user.pk) and body["email"] == user.email
    for key in (
        "tier",
        "model_limit",
        "models_used",
        "time_spent",
        "max_step_reached",
        "last_session_final_step",
        "credit_balance",
        "license",
        "subscription",
    ):
        assert key in body
    assert body["tier"] == "premium" and body["model_limit"] == 100
    assert body["subscription"]["amount"] == "299.00"
    assert body["subscription"]["status"] == "active"
    assert body["license"]["type"] == "paid"  # while a subscription is live


def test_me_shows_the_trial_license_of_a_user_created_outside_the_api(db):
    # createsuperuser and the admin's add form go through the user manager, not registration
    bare = User.objects.create_user("bare@example.com", "Bare-Password-91")

    response = client_for(bare).get(ME)

    assert response.status_code == 200
    assert (response.json()["license"]["type"], response.json()["license"]["status"]) == ("trial", "active")


def test_me_get_uses_a_bounded_number_of_queries(auth_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):
        assert auth_client.get(ME).status_code == 200


def test_me_patch_updates_profile_fields(auth_client, user):
    changes = {
        "name": "Ada",
        "phone_number": "+44 20 1234",
        "organization": "Engines Ltd",
        "job_title": "Analyst",
        "country": "GB",
        "industry": "Computing",
    }

    response = auth_client.patch(ME, changes, format="json")

    assert response.status_code == 200
    for key, value in changes.items():
        assert response.json()[key] == value
    user.refresh_from_db()
    assert user.name == "Ada" and user.industry == "Computing"


def test_me_patch_cannot_change_plan_usage_staff_or_email(auth_client, user):
    before = User.objects.values().get(pk=user.pk)

    response = auth_client.patch(
        ME,
        {
            "tier": "premium",
            "model_limit": 999,
            "models_used": 0,
            "is_staff": True,
            "is_superuser": True,
            "email": "x@evil.test",
            "time_spent": 10**6,
            "max_step_reached": 99,
            "deleted_at": None,
            "is_active": False,
        },
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["tier"] == "free" and body["model_limit"] == 5 and body["is_staff"] is False
    assert body["email"] == user.email
    assert User.objects.values().get(pk=user.pk) == before


def test_me_patch_refuses_too_long_values(auth_client, user):
    error = assert_error(auth_client.patch(ME, {"name": "x" * 151}, format="json"), 400, "validation_error")
    assert "name" in error["fields"]


def test_me_put_is_a_405(auth_client):
    assert_error(auth_client.put(ME, {"name": "x"}, format="json"), 405, "method_not_allowed")


def test_me_delete_soft_deletes_and_keeps_the_data(auth_client, user):
    response = auth_client.delete(ME)

    assert response.status_code == 204
    assert response.cookies["access_token"]["max-age"] == 0
    assert response.cookies["refresh_token"]["max-age"] == 0
    stored = User.objects.get(pk=user.pk)
    assert stored.deleted_at is not None and stored.is_active is False
    assert License.objects.filter(user=user).exists()
    assert UserPreferences.objects.filter(user=user).exists()


def test_me_delete_ends_the_session_at_once(auth_client, tokens):
    auth_client.delete(ME)

    # the access token still in hand no longer works …
    assert_error(auth_client.get(ME), 401)
    # … nor does the refresh token issued before
    refresh = auth_client.post("/api/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert_error(refresh, 401)


def test_me_delete_twice_keeps_the_first_deletion_time(user):
    services.user_soft_delete(user=user)
    first = User.objects.get(pk=user.pk).deleted_at

    services.user_soft_delete(user=user)

    assert User.objects.get(pk=user.pk).deleted_at == first


def test_me_anonymous_is_a_401(api_client):
    for method in ("get", "patch", "delete"):
        assert_error(getattr(api_client, method)(ME), 401, "not_authenticated")


def test_me_only_ever_shows_and_changes_the_caller(auth_client, user, other_user):
    auth_client.patch(ME, {"name": "Mine"}, format="json")

    assert auth_client.get(ME).json()["id"] == str(user.pk)
    other_user.refresh_from_db()
    assert other_user.name != "Mine"


def test_subscription_shown_is_the_current_one(user):
    now = timezone.now()
    Subscription.objects.create(
        user=user,
        amount=Decimal("10.00"),
        status="expired",
        start_date=now - timedelta(days=60),
        end_date=now - timedelta(days=30),
    )

    assert client_for(user).get(ME).json()["subscription"] is None
