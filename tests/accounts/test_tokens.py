import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.models import User
from tests.conftest import assert_error
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REFRESH = "/api/auth/token/refresh"


def _csrf(client) -> str:
    """Cookie-mode refresh and logout need the CSRF header (test_cookie_csrf_refresh_logout)."""
    return client.cookies["csrftoken"].value


LOGOUT = "/api/auth/logout"


def test_refresh_returns_a_new_pair_and_the_new_access_token_works(api_client, tokens, user):
    response = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 200
    rotated = response.json()
    assert set(rotated) == {"access", "refresh"}
    assert rotated["refresh"] != tokens["refresh"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {rotated['access']}")
    assert client.get("/api/users/me").json()["id"] == str(user.pk)


def test_reusing_a_rotated_refresh_token_is_a_401(api_client, tokens):
    first = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert first.status_code == 200

    reused = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")

    assert_error(reused, 401, "token_not_valid")


def test_the_rotated_refresh_token_can_itself_be_rotated(api_client, tokens):
    second = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").json()

    third = api_client.post(REFRESH, {"refresh": second["refresh"]}, format="json")

    assert third.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_concurrent_reuse_of_one_refresh_token_rotates_it_only_once():
    # given one refresh token presented by several callers at the same instant
    user = UserFactory()
    raw = str(RefreshToken.for_user(user))
    barrier = threading.Barrier(4)
    statuses = []

    def refresh():
        try:
            barrier.wait()
            statuses.append(APIClient().post(REFRESH, {"refresh": raw}, format="json").status_code)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then exactly one caller got a new pair
    assert sorted(statuses) == [200, 401, 401, 401]


def test_refresh_with_an_access_token_is_a_401(api_client, tokens):
    assert_error(api_client.post(REFRESH, {"refresh": tokens["access"]}, format="json"), 401)


@pytest.mark.parametrize("garbage", ["not-a-token", "a.b.c", "123"])
def test_refresh_with_garbage_is_a_401(api_client, garbage):
    assert_error(api_client.post(REFRESH, {"refresh": garbage}, format="json"), 401, "token_not_valid")


def test_refresh_without_a_token_is_a_400(api_client):
    error = assert_error(api_client.post(REFRESH, {}, format="json"), 400, "validation_error")
    assert "refresh" in error["fields"]


def test_refresh_of_a_soft_deleted_user_is_a_401(api_client, tokens, user):
    services.user_soft_delete(user=user)

    assert_error(api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json"), 401)


def test_refresh_token_rotated_before_soft_delete_dies_with_the_account(api_client, tokens, user):
    rotated = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").json()
    services.user_soft_delete(user=user)
    User.objects.filter(pk=user.pk).update(is_active=True)  # even if staff reactivates by mistake

    assert_error(api_client.post(REFRESH, {"refresh": rotated["refresh"]}, format="json"), 401)


def test_refresh_token_of_a_hard_deleted_user_is_a_401_not_a_500(api_client):
    gone = UserFactory()
    raw = str(RefreshToken.for_user(gone))
    gone.delete()

    assert_error(api_client.post(REFRESH, {"refresh": raw}, format="json"), 401)


def test_refresh_reads_the_refresh_cookie_when_the_body_has_none(cookie_client):
    response = cookie_client.post(REFRESH, {}, format="json", HTTP_X_CSRFTOKEN=_csrf(cookie_client))

    assert response.status_code == 200
    assert response.cookies["access_token"].value == response.json()["access"]
    assert response.cookies["refresh_token"].value == response.json()["refresh"]


def test_logout_blacklists_the_refresh_token(api_client, tokens):
    response = api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 204
    assert_error(api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json"), 401)


def test_logout_clears_the_auth_cookies(cookie_client):
    response = cookie_client.post(LOGOUT, {}, format="json", HTTP_X_CSRFTOKEN=_csrf(cookie_client))

    assert response.status_code == 204
    for name in ("access_token", "refresh_token"):
        assert response.cookies[name].value == ""
        assert response.cookies[name]["max-age"] == 0


def test_logout_through_the_cookie_blacklists_the_cookie_refresh_token(cookie_client):
    raw = cookie_client.cookies["refresh_token"].value

    cookie_client.post(LOGOUT, {}, format="json", HTTP_X_CSRFTOKEN=_csrf(cookie_client))

    assert_error(APIClient().post(REFRESH, {"refresh": raw}, format="json"), 401)


def test_logout_with_a_dead_refresh_cookie_still_clears_the_cookies(cookie_client):
    # given a browser whose refresh token was already rotated away in another tab
    raw = cookie_client.cookies["refresh_token"].value
    assert APIClient().post(REFRESH, {"refresh": raw}, format="json").status_code == 200

    # when it logs out
    response = cookie_client.post(LOGOUT, {}, format="json", HTTP_X_CSRFTOKEN=_csrf(cookie_client))

    # then the token is reported invalid, but the browser is logged out all the same
    assert_error(response, 401, "token_not_valid")
    for name in ("access_token", "refresh_token"):
        assert response.cookies[name].value == ""
        assert response.cookies[name]["max-age"] == 0
    assert_error(cookie_client.get("/api/users/me"), 401)


def test_logout_twice_is_a_401_the_second_time(api_client, tokens):
    api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")

    assert_error(api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json"), 401)


def test_logout_without_a_token_is_a_400(api_client):
    assert_error(api_client.post(LOGOUT, {}, format="json"), 400, "validation_error")
