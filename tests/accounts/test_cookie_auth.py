import pytest
from rest_framework.test import APIClient

from tests.accounts.conftest import login
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

ME = "/api/users/me"


def test_login_sets_httponly_access_and_refresh_cookies_and_a_csrf_cookie(api_client, user):
    response = login(api_client, user.email)

    access = response.cookies["access_token"]
    assert access.value == response.json()["access"]
    assert access["httponly"] and access["samesite"] == "Lax"
    refresh = response.cookies["refresh_token"]
    assert refresh["httponly"] and refresh["path"] == "/api/auth/"
    assert not response.cookies["csrftoken"]["httponly"]  # the frontend must read it


def test_get_me_with_only_the_cookie_works(cookie_client, user):
    response = cookie_client.get(ME)

    assert response.status_code == 200
    assert response.json()["id"] == str(user.pk)


def test_unsafe_cookie_request_without_the_csrf_header_is_a_403(cookie_client, user):
    response = cookie_client.patch(ME, {"name": "Changed"}, format="json")

    assert_error(response, 403, "permission_denied")
    user.refresh_from_db()
    assert user.name != "Changed"


def test_unsafe_cookie_request_with_a_wrong_csrf_header_is_a_403(cookie_client):
    response = cookie_client.patch(ME, {"name": "Changed"}, format="json", HTTP_X_CSRFTOKEN="x" * 32)

    assert_error(response, 403, "permission_denied")


def test_unsafe_cookie_request_with_the_csrf_header_is_a_200(cookie_client, user):
    csrf = cookie_client.cookies["csrftoken"].value

    response = cookie_client.patch(ME, {"name": "Changed"}, format="json", HTTP_X_CSRFTOKEN=csrf)

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.name == "Changed"


def test_unsafe_cookie_request_from_a_foreign_origin_is_a_403_even_with_the_token(cookie_client, user):
    csrf = cookie_client.cookies["csrftoken"].value

    response = cookie_client.patch(
        ME, {"name": "Changed"}, format="json", HTTP_X_CSRFTOKEN=csrf, HTTP_ORIGIN="https://evil.example"
    )

    assert_error(response, 403, "permission_denied")
    user.refresh_from_db()
    assert user.name != "Changed"


def test_cookie_delete_of_the_account_needs_the_csrf_header(cookie_client, user):
    assert_error(cookie_client.delete(ME), 403)

    user.refresh_from_db()
    assert user.deleted_at is None


def test_bearer_requests_need_no_csrf_header(user, tokens):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")

    assert client.patch(ME, {"name": "Changed"}, format="json").status_code == 200


def test_an_invalid_access_cookie_is_a_401(db):
    client = APIClient(enforce_csrf_checks=True)
    client.cookies["access_token"] = "garbage"

    assert_error(client.get(ME), 401)


def test_no_credentials_is_a_401(api_client):
    assert_error(api_client.get(ME), 401, "not_authenticated")


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer a b", "Bearer not.a.jwt", "Basic dXNlcjpwYXNz", "Bearer \u00ff\u00fe", "Token abc"],
)
def test_malformed_authorization_headers_are_a_401_envelope(api_client, user, header):
    assert_error(api_client.get(ME, HTTP_AUTHORIZATION=header), 401)


def test_an_access_token_signed_with_another_key_is_a_401(api_client, user):
    from rest_framework_simplejwt.tokens import AccessToken

    forged = AccessToken.for_user(user)
    forged_raw = forged.token_backend.__class__(
        forged.token_backend.algorithm, signing_key="not-our-key-" * 4
    ).encode(forged.payload)

    assert_error(api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {forged_raw}"), 401)
