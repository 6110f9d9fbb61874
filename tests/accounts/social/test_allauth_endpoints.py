"""Every endpoint allauth's headless app client serves answers garbage with a 4xx, never a 500."""

import pytest

pytestmark = pytest.mark.django_db

PATHS = [
    "/_allauth/app/v1/config",
    "/_allauth/app/v1/auth/session",
    "/_allauth/app/v1/auth/reauthenticate",
    "/_allauth/app/v1/auth/code/confirm",
    "/_allauth/app/v1/account/providers",
    "/_allauth/app/v1/auth/provider/signup",
    "/_allauth/app/v1/auth/provider/redirect",
    "/_allauth/app/v1/auth/provider/token",
    "/_allauth/app/v1/tokens/refresh",
]
BODIES = [b"", b"{not json", b'{"email": 5, "refresh_token": ["x"], "provider": {}, "token": []}']


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("body", BODIES)
def test_garbage_is_never_a_500(api_client, path, method, body):
    response = api_client.generic(method, path, body, content_type="application/json")

    assert response.status_code < 500, (response.status_code, response.content[:200])


@pytest.mark.parametrize("path", PATHS)
def test_a_bogus_session_token_is_never_a_500(api_client, path):
    response = api_client.post(path, {}, format="json", HTTP_X_SESSION_TOKEN="bogus")

    assert response.status_code < 500


def test_allauths_token_refresh_is_not_the_way_to_refresh(api_client):
    response = api_client.post("/_allauth/app/v1/tokens/refresh", {"refresh_token": "x"}, format="json")

    assert 400 <= response.status_code < 500
