"""An existing account is entered by a social login only when the provider vouches for the
email; an unverified address never takes an account over. Staff still need the admin's TOTP."""

import pytest
from allauth.socialaccount.models import SocialAccount
from django.test import Client
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from tests.accounts.social.providers import facebook_token, google_token, line_token, sign_in
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_a_verified_google_email_logs_into_the_existing_account_and_links_it(
    api_client, providers, provider_keys
):
    # given: a password account whose address was verified
    user = UserFactory(email="owner@example.com", email_verified_at=timezone.now())

    # when
    response = sign_in(api_client, "google", google_token(provider_keys, email="Owner@example.com"))

    # then: the same account, now linked; its password still works
    assert response.status_code == 200, response.content
    assert response.json()["data"]["user"]["id"] == str(user.pk)
    assert User.objects.filter(email__iexact="owner@example.com").count() == 1
    assert SocialAccount.objects.get(provider="google").user_id == user.pk
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)
    login = api_client.post(
        "/api/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )
    assert login.status_code == 200


def test_a_verified_google_email_claims_an_account_nobody_verified_and_ends_its_tokens(
    api_client, providers, provider_keys
):
    # given: someone registered with this address (never verified) and holds tokens
    squatter = UserFactory(email="victim@example.com")
    old_refresh = str(RefreshToken.for_user(squatter))

    # when: the address's owner signs in with Google
    response = sign_in(api_client, "google", google_token(provider_keys, email="victim@example.com"))

    # then: the owner is in; the password and the refresh tokens issued before are dead
    assert response.status_code == 200, response.content
    assert response.json()["data"]["user"]["id"] == str(squatter.pk)
    squatter.refresh_from_db()
    assert squatter.email_verified_at is not None
    assert not squatter.has_usable_password()
    refreshed = api_client.post("/api/auth/token/refresh", {"refresh": old_refresh}, format="json")
    assert refreshed.status_code == 401
    login = api_client.post(
        "/api/auth/token", {"email": "victim@example.com", "password": DEFAULT_PASSWORD}, format="json"
    )
    assert login.status_code == 401


@pytest.mark.parametrize("provider", ["google", "facebook", "line"])
def test_an_unverified_social_email_does_not_take_over_an_existing_account(
    api_client, providers, provider_keys, provider
):
    # given
    user = UserFactory(email="taken@example.com", email_verified_at=timezone.now())
    providers.facebook_user("EAAB-taken", email="taken@example.com")
    token = {
        "google": lambda: google_token(provider_keys, email="taken@example.com", verified=False),
        "facebook": lambda: facebook_token("EAAB-taken"),
        "line": lambda: line_token(provider_keys, email="taken@example.com"),
    }[provider]()

    # when
    response = sign_in(api_client, provider, token)

    # then: not logged in (allauth asks for another address), nothing linked or created
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["meta"]["is_authenticated"] is False
    assert "access_token" not in body["meta"]
    assert {
        "id": "provider_signup",
        "provider": body["data"]["flows"][-1].get("provider"),
        "is_pending": True,
    } in [{k: f.get(k) for k in ("id", "provider", "is_pending")} for f in body["data"]["flows"]]
    assert not SocialAccount.objects.exists()
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


def test_a_closed_account_is_not_reopened_by_a_social_login(api_client, providers, provider_keys):
    UserFactory(
        email="closed@example.com",
        email_verified_at=timezone.now(),
        is_active=False,
        deleted_at=timezone.now(),
    )

    response = sign_in(api_client, "google", google_token(provider_keys, email="closed@example.com"))

    assert response.status_code in (401, 403), response.content
    assert "access_token" not in response.json().get("meta", {})
    assert User.objects.filter(email__iexact="closed@example.com").count() == 1
    assert not SocialAccount.objects.exists()


def test_a_staff_member_signing_in_socially_still_faces_the_admins_second_factor(
    api_client, providers, provider_keys
):
    # given
    staff = UserFactory(email="ops@example.com", is_staff=True, email_verified_at=timezone.now())

    # when: a Google login, and its server-side session presented to the admin as a cookie
    response = sign_in(api_client, "google", google_token(provider_keys, email="ops@example.com"))
    assert response.status_code == 200, response.content
    browser = Client()
    browser.cookies["sessionid"] = response.json()["meta"]["session_token"]
    index = browser.get("/admin/", follow=True)

    # then: the session is the staff member's, but the admin answers with the TOTP page only
    assert browser.session.get("_auth_user_id") == str(staff.pk)
    assert [url.split("?")[0] for url, _ in index.redirect_chain] == ["/admin/login/", "/admin/otp/"]
    assert index.status_code == 200
    assert [t.name for t in index.templates][0] == "admin/otp.html"
