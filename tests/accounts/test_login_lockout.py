"""Login lockout with django-axes (issue 9): per (email, client address), a cool-off,
for the admin login and the API login alike."""

from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.models import User
from tests.accounts.conftest import login
from tests.conftest import assert_error
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "Admin-Console-Pass-7"
ADMIN_LOGIN = "/admin/login/"


@pytest.fixture
def superuser():
    return User.objects.create_superuser(ADMIN_EMAIL, ADMIN_PASSWORD)


def _admin_login(client, password, email=ADMIN_EMAIL, ip="203.0.113.7"):
    return client.post(
        f"{ADMIN_LOGIN}?next=/admin/", {"username": email, "password": password}, REMOTE_ADDR=ip
    )


def test_25_wrong_admin_passwords_lock_the_login_until_the_cool_off(superuser):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        client = Client()
        statuses = [_admin_login(client, f"wrong-{i}").status_code for i in range(25)]

        # the first failures are the normal form error, then the lockout answers 429
        limit = settings.AXES_FAILURE_LIMIT
        assert statuses[: limit - 1] == [200] * (limit - 1)
        assert set(statuses[limit:]) == {429}

        # the right password is refused too while locked
        refused = _admin_login(client, ADMIN_PASSWORD)
        assert refused.status_code == 429
        assert client.get("/admin/").status_code == 302  # still not logged in

        # another address is not locked for this account
        assert _admin_login(Client(), ADMIN_PASSWORD, ip="198.51.100.9").status_code == 302

        # after the cool-off the right password works again
        clock.move_to(start + settings.AXES_COOLOFF_TIME + timedelta(seconds=1))
        response = _admin_login(Client(), ADMIN_PASSWORD)
        assert response.status_code == 302 and response["Location"] == "/admin/"


def test_a_success_before_the_limit_resets_the_count(superuser):
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        _admin_login(client, f"wrong-{i}")

    assert _admin_login(client, ADMIN_PASSWORD).status_code == 302
    assert _admin_login(Client(), "wrong-again").status_code == 200
    assert _admin_login(Client(), ADMIN_PASSWORD).status_code == 302


def test_api_login_failures_lock_the_api_login_with_a_429_envelope(api_client, settings):
    settings.AXES_FAILURE_LIMIT = 3  # below the API's own login throttle (10/min)
    user = UserFactory()
    for _ in range(2):
        assert_error(login(api_client, user.email, "Wrong-password-1"), 401)
    # the failure that reaches the limit is answered with the lockout already
    assert_error(login(api_client, user.email, "Wrong-password-1"), 429, "locked_out")

    assert_error(login(api_client, user.email, DEFAULT_PASSWORD), 429, "locked_out")
    # the email is counted case-insensitively, like the login itself
    assert_error(login(api_client, user.email.upper(), DEFAULT_PASSWORD), 429, "locked_out")
    assert AccessAttempt.objects.filter(username=user.email).exists()


def test_api_login_still_works_with_the_axes_backend(api_client):
    user = UserFactory()

    response = login(api_client, user.email)

    assert response.status_code == 200
    assert set(response.json()) >= {"access", "refresh"}
