"""Issue 19 §6: a password reset or change ends every access (and refresh) token issued before
it — in this process at once, in any other within AUTH_USER_CACHE_SECONDS (the user-row cache's
TTL). Time is pinned with time-machine; nothing sleeps."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.authentication import user_row_cache
from accounts.models import User
from tests.accounts.test_recovery import CONFIRM, NEW_PASSWORD, reset_params
from tests.conftest import assert_error
from tests.factories import DEFAULT_PASSWORD, UserFactory, admin_login

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
ME = "/api/users/me"


def bearer(access) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


@pytest.fixture(autouse=True)
def _empty_user_cache():
    user_row_cache.clear()
    yield
    user_row_cache.clear()


def test_a_password_reset_ends_the_access_tokens_issued_before_it():
    with time_machine.travel(T0, tick=False) as clock:
        user = UserFactory()
        old = RefreshToken.for_user(user)
        old_access = str(old.access_token)  # `.access_token` mints a new one on every read
        assert bearer(old_access).get(ME).status_code == 200  # cached by this process now

        clock.shift(timedelta(minutes=1))
        assert (
            APIClient().post(CONFIRM, {**reset_params(user), "new_password": NEW_PASSWORD}).status_code == 200
        )

        assert_error(bearer(old_access).get(ME), 401)
        assert_error(APIClient().post("/api/auth/token/refresh", {"refresh": str(old)}), 401)
        fresh = APIClient().post("/api/auth/token", {"email": user.email, "password": NEW_PASSWORD})
        assert fresh.status_code == 200
        assert bearer(fresh.json()["access"]).get(ME).status_code == 200


def test_a_password_changed_by_another_process_ends_old_tokens_within_the_cache_ttl():
    with time_machine.travel(T0, tick=False) as clock:
        user = UserFactory()
        old = str(RefreshToken.for_user(user).access_token)
        assert bearer(old).get(ME).status_code == 200  # this process now holds the row

        # another process (a gunicorn worker, the admin on another machine) changes the password:
        # no signal reaches this process's cache
        clock.shift(timedelta(seconds=30))
        changed = User.objects.get(pk=user.pk)
        changed.set_password(NEW_PASSWORD)
        User.objects.filter(pk=user.pk).update(
            password=changed.password, password_changed_at=changed.password_changed_at
        )

        clock.shift(timedelta(seconds=settings.AUTH_USER_CACHE_SECONDS))
        assert_error(bearer(old).get(ME), 401)


def test_a_password_change_in_the_admin_ends_the_users_tokens():
    with time_machine.travel(T0, tick=False) as clock:
        user = UserFactory()
        old = RefreshToken.for_user(user)
        old_access = str(old.access_token)
        admin = Client()
        admin_login(admin, UserFactory(is_staff=True, is_superuser=True))

        clock.shift(timedelta(minutes=5))
        response = admin.post(
            f"/admin/accounts/user/{user.pk}/password/",
            {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
        )
        assert response.status_code == 302, response.content[:2000]

        assert_error(bearer(old_access).get(ME), 401)
        assert_error(APIClient().post("/api/auth/token/refresh", {"refresh": str(old)}), 401)


def test_tokens_issued_in_the_second_of_the_change_or_after_it_work():
    user = UserFactory()
    with time_machine.travel(T0 + timedelta(microseconds=900_000), tick=False) as clock:
        assert (
            APIClient().post(CONFIRM, {**reset_params(user), "new_password": NEW_PASSWORD}).status_code == 200
        )
        # the login right after the reset, in the same second
        assert bearer(RefreshToken.for_user(user).access_token).get(ME).status_code == 200
        clock.shift(timedelta(days=1))
        assert bearer(RefreshToken.for_user(user).access_token).get(ME).status_code == 200


def test_a_first_password_is_no_change():
    # Sign-up (or a social-login account setting its first password) ends nothing.
    user = User.objects.create_user("first@example.com", None)
    user.set_password(NEW_PASSWORD)
    assert user.password_changed_at is None
    user.set_password(DEFAULT_PASSWORD)
    assert user.password_changed_at is not None


def test_a_login_that_rehashes_the_same_password_ends_no_token(settings):
    # A hasher upgrade re-saves the same password on login: that is not a change.
    with time_machine.travel(T0, tick=False) as clock:
        user = UserFactory()
        old = str(RefreshToken.for_user(user).access_token)
        settings.PASSWORD_HASHERS = [
            "django.contrib.auth.hashers.PBKDF2PasswordHasher",
            "django.contrib.auth.hashers.MD5PasswordHasher",
        ]
        clock.shift(timedelta(minutes=1))
        login = APIClient().post("/api/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD})
        assert login.status_code == 200
        user.refresh_from_db()
        assert user.password.startswith("pbkdf2_")  # re-hashed

        assert bearer(old).get(ME).status_code == 200
