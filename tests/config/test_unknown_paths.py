"""Issue 19 §6: an unknown path is the 404 envelope whatever the method — also an unsafe one
from a browser-like client that enforces CSRF (it used to be 403 `csrf_failed`)."""

import pytest
from django.test import Client

from tests.conftest import assert_error
from tests.factories import UserFactory, admin_login

pytestmark = pytest.mark.django_db

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"]
PATHS = ["/nope", "/api/nope", "/api/credits/nope/", "/api/jobs/not-a-uuid/nothing"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", METHODS)
def test_an_unknown_path_is_a_404_envelope_for_every_method(method, path):
    client = Client(enforce_csrf_checks=True)

    response = client.generic(method, path, b'{"a": 1}', content_type="application/json")

    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_an_unknown_path_is_a_404_for_a_signed_in_browser_without_a_csrf_token(method):
    client = Client(enforce_csrf_checks=True)
    admin_login(client, UserFactory())

    assert_error(client.generic(method, "/api/nope"), 404, "not_found")


def test_head_on_an_unknown_path_is_a_404():
    assert Client(enforce_csrf_checks=True).head("/api/nope").status_code == 404


def test_a_known_path_still_enforces_csrf_for_a_session_cookie():
    # The catch-all is exempt because it does nothing; real views keep the check.
    client = Client(enforce_csrf_checks=True)
    admin_login(client, UserFactory(is_staff=True, is_superuser=True))

    response = client.post("/admin/logout/")

    assert response.status_code == 403
