"""A service key where its scopes do not reach answers 403 insufficient_scope (issue 9)."""

import pytest

from accounts.services import api_key_create
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_a_service_key_on_a_user_endpoint_is_a_403_insufficient_scope(api_client):
    _, key = api_key_create(name="worker", scopes=["jobs:write"])

    for path in ("/api/jobs", "/api/users/me"):
        assert_error(api_client.get(path, HTTP_AUTHORIZATION=f"Api-Key {key}"), 403, "insufficient_scope")


def test_a_service_key_lacking_the_scope_of_a_key_endpoint_is_a_403_insufficient_scope(api_client):
    _, key = api_key_create(name="reader", scopes=["jobs:read"])

    response = api_client.patch("/api/stats", {}, format="json", HTTP_AUTHORIZATION=f"Api-Key {key}")

    assert_error(response, 403, "insufficient_scope")
    assert "jobs:write" in response.json()["error"]["message"]
