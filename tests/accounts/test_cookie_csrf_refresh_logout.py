"""Cookie-mode refresh and logout need the CSRF header; body-token mode needs none (issue 9)."""

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from tests.accounts.conftest import login
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

REFRESH = "/api/auth/token/refresh"
LOGOUT = "/api/auth/logout"


def _csrf(client) -> str:
    return client.cookies["csrftoken"].value


def test_cookie_refresh_without_the_csrf_header_is_a_403_and_rotates_nothing(cookie_client):
    before = cookie_client.cookies["refresh_token"].value

    response = cookie_client.post(REFRESH, {}, format="json")

    assert_error(response, 403, "permission_denied")
    assert "refresh_token" not in response.cookies
    assert BlacklistedToken.objects.count() == 0
    assert cookie_client.cookies["refresh_token"].value == before


def test_cookie_refresh_with_a_wrong_csrf_header_is_a_403(cookie_client):
    assert_error(cookie_client.post(REFRESH, {}, format="json", HTTP_X_CSRFTOKEN="x" * 32), 403)


def test_cookie_refresh_with_the_csrf_header_rotates(cookie_client):
    before = cookie_client.cookies["refresh_token"].value

    response = cookie_client.post(REFRESH, {}, format="json", HTTP_X_CSRFTOKEN=_csrf(cookie_client))

    assert response.status_code == 200, response.content
    assert response.cookies["refresh_token"].value != before
    assert BlacklistedToken.objects.count() == 1


def test_body_mode_refresh_needs_no_csrf_header(api_client, user):
    raw = login(api_client, user.email).json()["refresh"]
    client = APIClient(enforce_csrf_checks=True)

    assert client.post(REFRESH, {"refresh": raw}, format="json").status_code == 200


def test_cookie_logout_without_the_csrf_header_is_a_403_and_keeps_the_session(cookie_client):
    response = cookie_client.post(LOGOUT, {}, format="json")

    assert_error(response, 403, "permission_denied")
    assert "refresh_token" not in response.cookies and "access_token" not in response.cookies
    assert BlacklistedToken.objects.count() == 0
    assert cookie_client.get("/api/users/me").status_code == 200


def test_cookie_logout_with_the_csrf_header_blacklists_and_clears_the_cookies(cookie_client):
    response = cookie_client.post(LOGOUT, {}, format="json", HTTP_X_CSRFTOKEN=_csrf(cookie_client))

    assert response.status_code == 204
    assert BlacklistedToken.objects.count() == 1
    assert response.cookies["refresh_token"].value == "" and response.cookies["access_token"].value == ""


def test_body_mode_logout_needs_no_csrf_header(api_client, user):
    raw = login(api_client, user.email).json()["refresh"]
    client = APIClient(enforce_csrf_checks=True)

    assert client.post(LOGOUT, {"refresh": raw}, format="json").status_code == 204
    assert BlacklistedToken.objects.count() == 1
