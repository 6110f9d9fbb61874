"""Signing in with Google, Facebook or LINE through allauth's headless app client ends with the
same simplejwt pair as a password login, and a new user has what every account has."""

import hashlib
import hmac

import pytest
from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import License, User
from tests.accounts.social.providers import (
    FACEBOOK_APP_TOKEN,
    facebook_token,
    google_token,
    jwt_payload,
    line_token,
    sign_in,
)

pytestmark = pytest.mark.django_db


def assert_signed_in_as(api_client, response, user: User):
    """The answer carries a working simplejwt pair for `user`: the access token opens
    /api/users/me, the refresh token rotates at /api/auth/token/refresh."""
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == 200
    assert body["meta"]["is_authenticated"] is True
    assert body["data"]["user"]["email"] == user.email
    assert body["meta"]["expires_in"] == int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds())
    access, refresh = body["meta"]["access_token"], body["meta"]["refresh_token"]
    assert jwt_payload(access)["user_id"] == str(user.pk)
    me = api_client.get("/api/users/me", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert me.status_code == 200
    assert me.json()["email"] == user.email
    rotated = api_client.post("/api/auth/token/refresh", {"refresh": refresh}, format="json")
    assert rotated.status_code == 200
    assert set(rotated.json()) >= {"access", "refresh"}
    return me.json()


def test_a_new_google_user_gets_an_account_a_trial_license_and_the_jwt_pair(
    api_client, providers, provider_keys
):
    # when
    response = sign_in(api_client, "google", google_token(provider_keys, email="Somchai@Example.com"))

    # then
    user = User.objects.get(email="somchai@example.com")
    me = assert_signed_in_as(api_client, response, user)
    assert me["license"]["type"] == "trial"
    assert me["license"]["status"] == "active"
    assert user.license.type == License.Type.TRIAL
    assert user.name == "Somchai Google"
    assert user.email_verified_at is not None  # Google vouched for it
    assert not user.has_usable_password()
    assert SocialAccount.objects.get(user=user).provider == "google"
    assert [(r.method, r.path) for r in providers.requests] == [("GET", "/google/oauth2/v1/certs")]


def test_a_social_sign_in_also_sets_the_auth_cookies_of_a_password_login(
    api_client, providers, provider_keys
):
    response = sign_in(api_client, "google", google_token(provider_keys, email="cookie@example.com"))

    assert response.status_code == 200
    meta = response.json()["meta"]
    assert response.cookies["access_token"].value == meta["access_token"]
    assert response.cookies["access_token"]["httponly"]
    assert response.cookies["refresh_token"].value == meta["refresh_token"]
    assert response.cookies["refresh_token"]["path"] == "/api/auth/"
    assert "csrftoken" in response.cookies
    cookie_only = api_client.get("/api/users/me")  # the client keeps the cookies, no header
    assert cookie_only.status_code == 200
    assert cookie_only.json()["email"] == "cookie@example.com"


def test_the_sign_in_needs_no_csrf_token(providers, provider_keys):
    browser = APIClient(enforce_csrf_checks=True)

    response = sign_in(browser, "google", google_token(provider_keys, email="csrf@example.com"))

    assert response.status_code == 200, response.content


def test_signing_in_again_with_the_same_google_account_finds_the_same_user(
    api_client, providers, provider_keys
):
    first = sign_in(api_client, "google", google_token(provider_keys, email="again@example.com"))
    second = sign_in(api_client, "google", google_token(provider_keys, email="again@example.com"))

    assert first.status_code == second.status_code == 200
    assert first.json()["data"]["user"]["id"] == second.json()["data"]["user"]["id"]
    assert User.objects.filter(email="again@example.com").count() == 1
    assert SocialAccount.objects.filter(provider="google").count() == 1


def test_a_new_facebook_user_signs_in_with_an_access_token(api_client, providers):
    # given: the access token the Facebook SDK gave the app
    providers.facebook_user("EAAB-user-token", email="niran@example.com")

    # when
    response = sign_in(api_client, "facebook", facebook_token("EAAB-user-token"))

    # then
    user = User.objects.get(email="niran@example.com")
    me = assert_signed_in_as(api_client, response, user)
    assert me["license"]["type"] == "trial"
    assert user.name == "Niran Facebook"
    assert user.email_verified_at is None  # Facebook does not say the address is verified
    assert SocialAccount.objects.get(user=user).provider == "facebook"
    # and the Graph API saw what Facebook expects: the app token by client credentials, the
    # user token inspected with it, /me with the fields and the appsecret_proof
    calls = {r.path.split("?")[0].rsplit("/", 1)[-1]: providers.query(r) for r in providers.requests}
    assert [r.path.split("?")[0] for r in providers.requests] == [
        "/facebook/v19.0/oauth/access_token",
        "/facebook/v19.0/debug_token",
        "/facebook/v19.0/me",
    ]
    assert calls["access_token"] == {
        "client_id": settings.SOCIAL_FACEBOOK_APP_ID,
        "client_secret": settings.SOCIAL_FACEBOOK_APP_SECRET,
        "grant_type": "client_credentials",
    }
    assert calls["debug_token"] == {"input_token": "EAAB-user-token", "access_token": FACEBOOK_APP_TOKEN}
    proof = hmac.new(
        settings.SOCIAL_FACEBOOK_APP_SECRET.encode(), b"EAAB-user-token", hashlib.sha256
    ).hexdigest()
    assert calls["me"]["appsecret_proof"] == proof
    assert set(calls["me"]["fields"].split(",")) >= {"id", "email", "name"}


def test_a_new_line_user_signs_in_with_an_id_token(api_client, providers, provider_keys):
    # when: the ID token LIFF / the LINE SDK gave the app (ES256, LINE's JWKS)
    response = sign_in(api_client, "line", line_token(provider_keys, email="malee@example.com"))

    # then
    user = User.objects.get(email="malee@example.com")
    me = assert_signed_in_as(api_client, response, user)
    assert me["license"]["type"] == "trial"
    assert user.name == "Malee LINE"
    assert user.email_verified_at is None  # LINE does not say the address is verified
    account = SocialAccount.objects.get(user=user)
    assert account.provider == "line"
    assert account.uid.startswith("U")
    assert [(r.method, r.path) for r in providers.requests] == [
        ("GET", "/line/.well-known/openid-configuration"),
        ("GET", "/line/oauth2/v2.1/certs"),
    ]


def test_a_social_user_without_a_verified_address_is_sent_our_verification_email(api_client, providers, sent):
    providers.facebook_user("EAAB-mail", email="mail@example.com")

    with sent.capture():  # a real worker delivers it
        response = sign_in(api_client, "facebook", facebook_token("EAAB-mail"))

    assert response.status_code == 200
    assert [m.to for m in sent.wait(1)] == [["mail@example.com"]]


def test_the_config_endpoint_lists_the_offered_providers(api_client, providers):
    response = api_client.get("/_allauth/app/v1/config")

    assert response.status_code == 200
    offered = {p["id"] for p in response.json()["data"]["socialaccount"]["providers"]}
    assert offered == {"google", "facebook", "line"}


def test_a_provider_with_an_empty_client_id_is_not_offered(api_client, providers, provider_keys, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        **settings.SOCIALACCOUNT_PROVIDERS,
        "google": {**settings.SOCIALACCOUNT_PROVIDERS["google"], "APPS": []},
    }

    offered = {
        p["id"]
        for p in api_client.get("/_allauth/app/v1/config").json()["data"]["socialaccount"]["providers"]
    }
    response = sign_in(api_client, "google", google_token(provider_keys, email="nope@example.com"))

    assert "google" not in offered
    assert response.status_code == 400
    assert not User.objects.filter(email="nope@example.com").exists()
