"""Whatever the token or the provider does, a social login answers a 4xx in allauth's headless
format ({"status", "errors": [{"code", "message", "param"}]}) and signs nobody in: never a 500."""

import time

import pytest
from allauth.socialaccount.models import SocialAccount
from django.conf import settings

from accounts.models import User
from tests.accounts.social.providers import (
    GOOGLE_ISSUER,
    TOKEN_URL,
    facebook_token,
    google_id_token,
    google_token,
    line_token,
    sign_in,
)

pytestmark = pytest.mark.django_db

EMAIL = "someone@example.com"


def assert_refused(response, status: int = 400, code: str | None = "invalid_token"):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status
    if status == 400:
        assert body["errors"], body
        if code:
            assert code in {e.get("code") for e in body["errors"]}, body
    assert "access_token" not in body.get("meta", {})
    assert not User.objects.filter(email=EMAIL).exists()
    assert not SocialAccount.objects.exists()


def unsigned_jwt_without_kid() -> str:
    import jwt

    now = int(time.time())
    claims = {"iss": GOOGLE_ISSUER, "aud": settings.SOCIAL_GOOGLE_CLIENT_ID, "sub": "1", "exp": now + 60}
    return jwt.encode(claims, "a-shared-secret-that-is-not-googles-key", algorithm="HS256")


GOOGLE_BAD_TOKENS = {
    "wrong_audience": lambda keys: google_token(
        keys, email=EMAIL, aud="another-client.apps.googleusercontent.com"
    ),
    "expired": lambda keys: google_token(
        keys, email=EMAIL, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600
    ),
    "wrong_issuer": lambda keys: google_token(keys, email=EMAIL, iss="https://evil.example.com"),
    "signed_by_another_key": lambda keys: google_token(keys, email=EMAIL, signing_key=keys.other_rsa),
    "not_a_jwt": lambda keys: {"client_id": settings.SOCIAL_GOOGLE_CLIENT_ID, "id_token": "not-a-jwt"},
    "jwt_without_kid": lambda keys: {
        "client_id": settings.SOCIAL_GOOGLE_CLIENT_ID,
        "id_token": unsigned_jwt_without_kid(),
    },
}


@pytest.mark.parametrize("case", sorted(GOOGLE_BAD_TOKENS))
def test_a_bad_google_id_token_is_refused(api_client, providers, provider_keys, case):
    response = sign_in(api_client, "google", GOOGLE_BAD_TOKENS[case](provider_keys))

    assert_refused(response)


def test_a_replayed_google_id_token_is_refused(api_client, providers, provider_keys):
    token = google_token(provider_keys, email=EMAIL)
    assert sign_in(api_client, "google", token).status_code == 200
    User.objects.filter(email=EMAIL).delete()

    assert_refused(sign_in(api_client, "google", token))


@pytest.mark.parametrize(
    "answer",
    [
        lambda request: (500, {"error": "internal"}),
        lambda request: (401, {"error": "unauthorized"}),
        lambda request: (200, ["not", "a", "key", "set"]),
        lambda request: None,  # the connection drops
    ],
    ids=["500", "401", "garbage", "network_error"],
)
def test_google_certificates_unavailable_is_refused(api_client, providers, provider_keys, answer):
    providers.route("GET", "/google/oauth2/v1/certs", answer)

    assert_refused(sign_in(api_client, "google", google_token(provider_keys, email=EMAIL)))


def test_a_token_for_another_client_id_is_refused(api_client, providers, provider_keys):
    token = {"client_id": "another-client", "id_token": google_id_token(provider_keys, email=EMAIL)}

    assert_refused(sign_in(api_client, "google", token), code=None)


def test_a_facebook_token_facebook_does_not_know_is_refused(api_client, providers):
    assert_refused(sign_in(api_client, "facebook", facebook_token("EAAB-unknown")))


def test_a_facebook_token_issued_to_another_app_is_refused(api_client, providers):
    providers.facebook_user("EAAB-other-app", email=EMAIL, app_id="999999")

    assert_refused(sign_in(api_client, "facebook", facebook_token("EAAB-other-app")))


@pytest.mark.parametrize("endpoint", ["oauth/access_token", "debug_token", "me"])
@pytest.mark.parametrize(
    "answer",
    [
        lambda request: (500, {"error": {"message": "An unknown error has occurred.", "code": 1}}),
        lambda request: (401, {"error": {"message": "Error validating access token", "code": 190}}),
        lambda request: None,
    ],
    ids=["500", "401", "network_error"],
)
def test_facebook_failing_is_refused(api_client, providers, endpoint, answer):
    providers.facebook_user("EAAB-fails", email=EMAIL)
    providers.route("GET", f"/facebook/v19.0/{endpoint}", answer)

    assert_refused(sign_in(api_client, "facebook", facebook_token("EAAB-fails")))


LINE_BAD_TOKENS = {
    "wrong_audience": lambda keys: line_token(keys, email=EMAIL, aud="1650000999"),
    "expired": lambda keys: line_token(
        keys, email=EMAIL, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600
    ),
    "wrong_issuer": lambda keys: line_token(keys, email=EMAIL, iss="https://evil.example.com"),
    "not_a_jwt": lambda keys: {"client_id": settings.SOCIAL_LINE_CHANNEL_ID, "id_token": "a.b.c"},
    "access_token_only": lambda keys: {
        "client_id": settings.SOCIAL_LINE_CHANNEL_ID,
        "access_token": "line-at",
    },
}


@pytest.mark.parametrize("case", sorted(LINE_BAD_TOKENS))
def test_a_bad_line_id_token_is_refused(api_client, providers, provider_keys, case):
    assert_refused(sign_in(api_client, "line", LINE_BAD_TOKENS[case](provider_keys)))


@pytest.mark.parametrize("path", ["/line/.well-known/openid-configuration", "/line/oauth2/v2.1/certs"])
@pytest.mark.parametrize(
    "answer",
    [lambda request: (500, {"error": "server_error"}), lambda request: (200, {}), lambda request: None],
    ids=["500", "empty", "network_error"],
)
def test_line_failing_is_refused(api_client, providers, provider_keys, path, answer):
    providers.route("GET", path, answer)

    assert_refused(sign_in(api_client, "line", line_token(provider_keys, email=EMAIL)))


def test_a_line_login_without_an_email_asks_for_one_and_creates_nobody(api_client, providers, provider_keys):
    response = sign_in(api_client, "line", line_token(provider_keys, email=None))

    assert_refused(response, status=401)
    assert "provider_signup" in {f["id"] for f in response.json()["data"]["flows"]}


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "google", "process": "login", "token": "a-string"},
        {"provider": "google", "process": "login", "token": {"client_id": 5, "id_token": "x"}},
        {"provider": "google", "process": "login", "token": {"client_id": "c", "id_token": 5}},
        {"provider": "google", "process": "login", "token": {"client_id": settings.SOCIAL_GOOGLE_CLIENT_ID}},
        {"provider": "myspace", "process": "login", "token": {"client_id": "c", "id_token": "x"}},
        {"provider": "google", "process": "takeover", "token": {"client_id": "c", "id_token": "x"}},
        {"provider": ["google"], "process": "login", "token": {}},
        {},
        [],
    ],
)
def test_malformed_bodies_are_a_400(api_client, providers, body):
    assert_refused(api_client.post(TOKEN_URL, body, format="json"), code=None)


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe"])
def test_unparseable_bodies_are_a_400(api_client, providers, raw):
    response = api_client.generic("POST", TOKEN_URL, raw, content_type="application/json")

    assert_refused(response, code=None)


def test_sign_ins_share_the_password_logins_throttle(api_client, providers):
    body = {"provider": "google", "process": "login", "token": "not-a-token"}
    answers = [api_client.post(TOKEN_URL, body, format="json").status_code for _ in range(10)]
    password = api_client.post("/api/auth/token", {"email": EMAIL, "password": "x" * 12}, format="json")

    throttled = api_client.post(TOKEN_URL, body, format="json")

    assert answers == [400] * 10
    assert password.status_code == 429
    assert throttled.status_code == 429
    assert throttled.json()["errors"][0]["code"] == "too_many_requests"
    assert int(throttled["Retry-After"]) > 0
