import threading
from datetime import timedelta

import pytest
from django.db import connection
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from accounts.models import License, User, UserPreferences
from tests.accounts.conftest import STRONG_PASSWORD, register_payload
from tests.conftest import assert_error
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/auth/register"


def test_register_creates_user_with_tokens_profile_and_30_day_trial(api_client):
    # when
    response = api_client.post(URL, register_payload(email="  New.Person@Example.COM "), format="json")

    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"user", "tokens"}
    assert set(body["tokens"]) == {"access", "refresh"}
    profile = body["user"]
    assert profile["email"] == "new.person@example.com"
    assert profile["name"] == "New Person"
    assert profile["organization"] == "Acme"
    assert profile["tier"] == "free"
    assert profile["model_limit"] == 5
    assert profile["models_used"] == 0
    assert profile["credit_balance"] == 0
    assert profile["subscription"] is None
    assert profile["license"]["type"] == "trial"
    assert profile["license"]["status"] == "active"
    assert "password" not in profile and "password_confirm" not in profile

    user = User.objects.get(email="new.person@example.com")
    assert user.check_password(STRONG_PASSWORD)
    assert UserPreferences.objects.filter(user=user).exists()
    lic = License.objects.get(user=user)
    assert lic.date_end - lic.date_start == timedelta(days=30)


def test_register_sets_auth_cookies(api_client):
    response = api_client.post(URL, register_payload(), format="json")

    assert response.status_code == 201
    assert response.cookies["access_token"]["httponly"]
    assert response.cookies["refresh_token"]["httponly"]


def test_registered_tokens_authenticate(api_client):
    tokens = api_client.post(URL, register_payload(), format="json").json()["tokens"]

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    response = api_client.get("/api/users/me")

    assert response.status_code == 200
    assert response.json()["email"] == "new.person@example.com"


@pytest.mark.parametrize("existing", ["new.person@example.com", "NEW.Person@example.com"])
def test_register_refuses_an_email_taken_in_any_case(api_client, existing):
    UserFactory(email=existing.lower())

    response = api_client.post(URL, register_payload(email="New.PERSON@Example.com"), format="json")

    error = assert_error(response, 400, "validation_error")
    assert "email" in error["fields"]
    assert User.objects.count() == 1


def test_register_refuses_an_email_taken_in_the_database_in_another_case(api_client):
    # A row written outside the API with odd casing still blocks the address.
    User.objects.bulk_create([User(email="Mixed.Case@Example.com")])

    response = api_client.post(URL, register_payload(email="mixed.case@example.com"), format="json")

    assert_error(response, 400, "validation_error")
    assert User.objects.count() == 1


def test_register_refuses_mismatched_passwords(api_client):
    response = api_client.post(
        URL, register_payload(password_confirm="Another-Strong-Pass-93"), format="json"
    )

    error = assert_error(response, 400, "validation_error")
    assert "password_confirm" in error["fields"]
    assert not User.objects.exists()


@pytest.mark.parametrize("weak", ["short1", "password123", "12345678901", "New Person"])
def test_register_refuses_weak_passwords(api_client, weak):
    response = api_client.post(URL, register_payload(password=weak, password_confirm=weak), format="json")

    error = assert_error(response, 400, "validation_error")
    assert "password" in error["fields"]
    assert not User.objects.exists()


@pytest.mark.parametrize("missing", ["email", "password", "password_confirm"])
def test_register_requires_email_and_both_passwords(api_client, missing):
    payload = register_payload()
    del payload[missing]

    response = api_client.post(URL, payload, format="json")

    error = assert_error(response, 400, "validation_error")
    assert missing in error["fields"]
    assert not User.objects.exists()


def test_register_with_empty_body_names_every_required_field(api_client):
    response = api_client.post(URL, {}, format="json")

    error = assert_error(response, 400, "validation_error")
    assert {"email", "password", "password_confirm"} <= set(error["fields"])


def test_register_refuses_an_invalid_email(api_client):
    response = api_client.post(URL, register_payload(email="not-an-email"), format="json")

    assert "email" in assert_error(response, 400, "validation_error")["fields"]


def test_register_ignores_privileged_fields(api_client):
    payload = register_payload(
        tier="premium", model_limit=1000, models_used=3, is_staff=True, is_superuser=True, time_spent=999
    )

    response = api_client.post(URL, payload, format="json")

    assert response.status_code == 201
    user = User.objects.get()
    assert (user.tier, user.model_limit, user.models_used) == ("free", 5, 0)
    assert not user.is_staff and not user.is_superuser and user.time_spent == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_of_one_email_create_one_user():
    # given four sign-ups of the same address, in different cases, at the same instant
    emails = ["race@example.com", "RACE@example.com", "Race@Example.com", "race@EXAMPLE.COM"]
    barrier = threading.Barrier(len(emails))
    responses = []

    def register(email):
        try:
            client = APIClient()
            barrier.wait()
            responses.append(client.post(URL, register_payload(email=email), format="json"))
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=register, args=(e,)) for e in emails]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then exactly one wins; the others get the validation envelope, never a 500
    assert sorted(r.status_code for r in responses) == [201, 400, 400, 400]
    for response in responses:
        if response.status_code == 400:
            assert "email" in assert_error(response, 400, "validation_error")["fields"]
    assert User.objects.filter(email__iexact="race@example.com").count() == 1
    assert License.objects.count() == UserPreferences.objects.count() == 1


def test_registration_is_throttled_with_a_429_envelope(api_client, monkeypatch):
    monkeypatch.setattr(
        ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, "register": "2/hour"}
    )
    for n in range(2):
        created = api_client.post(URL, register_payload(email=f"p{n}@example.com"), format="json")
        assert created.status_code == 201

    response = api_client.post(URL, register_payload(email="p3@example.com"), format="json")

    assert_error(response, 429, "throttled")
    assert not User.objects.filter(email="p3@example.com").exists()
