import pytest
from rest_framework.throttling import ScopedRateThrottle

from accounts import services
from accounts.models import License, User, UserPreferences
from tests.accounts.conftest import login
from tests.conftest import assert_error
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/auth/token"


def test_login_returns_a_token_pair_that_authenticates(api_client, user):
    response = login(api_client, user.email)

    assert response.status_code == 200
    tokens = response.json()
    assert set(tokens) == {"access", "refresh"}
    api_client.cookies.clear()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert api_client.get("/api/users/me").json()["id"] == str(user.pk)


def test_login_email_is_case_insensitive(api_client, user):
    assert login(api_client, user.email.upper()).status_code == 200


def test_login_records_last_login(api_client, user):
    assert user.last_login is None

    login(api_client, user.email)

    user.refresh_from_db()
    assert user.last_login is not None


def test_wrong_password_and_unknown_email_give_the_same_answer(api_client, user):
    wrong_password = login(api_client, user.email, "Not-The-Password-1")
    unknown_email = login(api_client, "nobody@example.com", "Not-The-Password-1")

    assert_error(wrong_password, 401, "invalid_credentials")
    assert wrong_password.status_code == unknown_email.status_code
    assert wrong_password.json() == unknown_email.json()
    assert "access_token" not in wrong_password.cookies


def test_soft_deleted_user_cannot_log_in_and_gets_the_same_answer_as_a_wrong_password(api_client):
    # given a closed account
    closed = UserFactory()
    services.user_soft_delete(user=closed)

    # when
    response = login(api_client, closed.email)
    wrong_password = login(api_client, "nobody@example.com", DEFAULT_PASSWORD)

    # then
    assert_error(response, 401, "invalid_credentials")
    assert response.json() == wrong_password.json()


def test_deleted_account_cannot_log_in_even_if_reactivated_by_mistake(api_client):
    closed = UserFactory()
    services.user_soft_delete(user=closed)
    User.objects.filter(pk=closed.pk).update(is_active=True)

    assert_error(login(api_client, closed.email), 401, "invalid_credentials")


def test_soft_deleted_user_keeps_its_data(user):
    services.user_soft_delete(user=user)

    stored = User.objects.get(pk=user.pk)
    assert stored.deleted_at is not None and not stored.is_active
    assert stored.email == user.email and stored.name == user.name
    assert License.objects.filter(user=user).exists()
    assert UserPreferences.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    "payload", [{}, {"email": "a@example.com"}, {"password": "x"}, {"email": "", "password": ""}]
)
def test_login_with_missing_fields_is_a_400_envelope(api_client, payload):
    response = api_client.post(URL, payload, format="json")

    assert_error(response, 400, "validation_error")


@pytest.fixture
def login_rate_of_3(monkeypatch):
    # DRF binds THROTTLE_RATES on the class at import time, so overriding settings alone
    # would not reach it.
    monkeypatch.setattr(
        ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, "login": "3/min"}
    )


def test_login_is_throttled_with_a_429_envelope(api_client, user, login_rate_of_3):
    for _ in range(3):
        assert login(api_client, user.email, "Wrong-Password-1").status_code == 401

    response = login(api_client, user.email)

    error = assert_error(response, 429, "throttled")
    assert error["retry_after"] > 0
    assert "Retry-After" in response.headers


def test_login_throttle_cannot_be_dodged_with_a_forged_forwarded_for_header(
    api_client, user, login_rate_of_3
):
    for n in range(3):
        login(api_client, user.email, "Wrong-Password-1")
        api_client.credentials(HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
    api_client.credentials(HTTP_X_FORWARDED_FOR="10.9.9.9")

    assert_error(login(api_client, user.email), 429, "throttled")
