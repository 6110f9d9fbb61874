"""Password reset and email verification, with emails sent by a real Celery worker."""

import re
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tokens import password_reset_tokens
from tests.accounts.conftest import STRONG_PASSWORD, login, register_payload
from tests.conftest import client_for
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

RESET = "/api/auth/password/reset"
CONFIRM = "/api/auth/password/reset/confirm"
VERIFY = "/api/auth/email/verify"
NEW_PASSWORD = "Granite-Orchard-Lantern-58"


def reset_params(user) -> dict:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return {"uid": uid, "token": password_reset_tokens.make_token(user)}


def link_params(message) -> dict:
    url = re.search(r"https?://\S+", message.body).group(0)
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def test_reset_link_sets_a_new_password_once_and_ends_every_session(api_client, user, sent):
    # given a user with a live refresh token
    old_refresh = login(api_client, user.email).json()["refresh"]

    # when they ask for a reset and follow the emailed link
    with sent.capture():
        response = api_client.post(RESET, {"email": user.email.upper()}, format="json")
    assert response.status_code == 202
    [message] = sent.wait(1)
    assert message.to == [user.email] and message.alternatives[0][1] == "text/html"
    params = link_params(message)
    confirmed = api_client.post(CONFIRM, {**params, "new_password": NEW_PASSWORD}, format="json")

    # then the new password works, the old one and the old session do not, the link is spent
    assert confirmed.status_code == 200, confirmed.content
    assert login(APIClient(), user.email, NEW_PASSWORD).status_code == 200
    assert login(APIClient(), user.email, DEFAULT_PASSWORD).status_code == 401
    assert (
        api_client.post("/api/auth/token/refresh", {"refresh": old_refresh}, format="json").status_code == 401
    )
    again = api_client.post(CONFIRM, {**params, "new_password": "Another-Long-Phrase-93"}, format="json")
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_token"


def test_unknown_and_known_addresses_get_the_same_answer_and_only_one_gets_mail(
    api_client, user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as unknown_callbacks:
        unknown = api_client.post(RESET, {"email": "nobody@example.com"}, format="json")
    with django_capture_on_commit_callbacks() as known_callbacks:
        known = api_client.post(RESET, {"email": user.email}, format="json")

    assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())
    assert len(unknown_callbacks) == 0 and len(known_callbacks) == 1


def test_a_second_reset_request_within_the_cooldown_sends_nothing(
    api_client, user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as first:
        api_client.post(RESET, {"email": user.email}, format="json")
    with django_capture_on_commit_callbacks() as second:
        response = api_client.post(RESET, {"email": user.email}, format="json")
    assert response.status_code == 202
    assert (len(first), len(second)) == (1, 0)


def test_reset_requests_are_throttled(api_client, settings):
    for _ in range(5):
        assert api_client.post(RESET, {"email": "x@example.com"}, format="json").status_code == 202
    response = api_client.post(RESET, {"email": "x@example.com"}, format="json")
    assert response.status_code == 429 and response.json()["error"]["code"] == "throttled"


@pytest.mark.parametrize(
    "body",
    [
        {"uid": "not-base64!", "token": "abc", "new_password": NEW_PASSWORD},
        {"uid": "MTIz", "token": "abc", "new_password": NEW_PASSWORD},
        {"uid": "", "token": "", "new_password": ""},
        {"uid": "x" * 65, "token": "t", "new_password": NEW_PASSWORD},
        {"new_password": NEW_PASSWORD},
        [],
    ],
)
def test_forged_or_malformed_confirmations_are_400_envelopes(api_client, user, body):
    before = User.objects.get(pk=user.pk).password
    response = api_client.post(CONFIRM, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("invalid_token", "validation_error")
    assert User.objects.get(pk=user.pk).password == before


def test_a_weak_new_password_is_refused_and_nothing_changes(api_client, user):
    params = reset_params(user)
    response = api_client.post(CONFIRM, {**params, "new_password": "123"}, format="json")

    assert response.status_code == 400 and "new_password" in response.json()["error"]["fields"]
    assert login(APIClient(), user.email, DEFAULT_PASSWORD).status_code == 200


def test_registration_sends_a_verification_link_that_verifies_once(api_client, sent):
    with sent.capture():
        created = api_client.post("/api/auth/register", register_payload(), format="json")
    assert created.status_code == 201
    [message] = sent.wait(1)
    assert message.to == ["new.person@example.com"]
    params = link_params(message)

    first = api_client.post(VERIFY, params, format="json")
    second = api_client.post(VERIFY, params, format="json")

    assert (first.status_code, second.status_code) == (200, 200)
    user = User.objects.get(email="new.person@example.com")
    assert user.email_verified_at is not None
    assert client_for(user).get("/api/users/me").json()["email_verified"] is True
    assert login(APIClient(), user.email, STRONG_PASSWORD).status_code == 200


def test_a_reset_token_is_not_a_verification_token(api_client, user):
    params = reset_params(user)
    response = api_client.post(VERIFY, params, format="json")

    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_token"
    user.refresh_from_db()
    assert user.email_verified_at is None


def test_resend_needs_a_login_and_sends_nothing_once_verified(
    api_client, user, django_capture_on_commit_callbacks
):
    assert api_client.post(VERIFY + "/resend").status_code == 401
    with django_capture_on_commit_callbacks() as unverified:
        assert client_for(user).post(VERIFY + "/resend").status_code == 202
    User.objects.filter(pk=user.pk).update(email_verified_at="2026-11-01T00:00:00Z")
    with django_capture_on_commit_callbacks() as verified:
        assert client_for(user).post(VERIFY + "/resend").status_code == 202
    assert (len(unverified), len(verified)) == (1, 0)


def test_a_soft_deleted_account_cannot_reset_its_password(api_client, django_capture_on_commit_callbacks):
    from accounts.services import user_soft_delete

    gone = UserFactory()
    user_soft_delete(user=gone)
    with django_capture_on_commit_callbacks() as callbacks:
        assert api_client.post(RESET, {"email": gone.email}, format="json").status_code == 202
    assert len(callbacks) == 0
