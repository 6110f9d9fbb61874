"""API plumbing: trailing slashes, 404/405 envelopes, and the OpenAPI schema and docs."""

import io
import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

# (path, a method it answers, whether it needs a logged-in user)
ACCOUNTS_PATHS = [
    ("/api/auth/register", "post", False),
    ("/api/auth/token", "post", False),
    ("/api/auth/token/refresh", "post", False),
    ("/api/auth/logout", "post", False),
    ("/api/users/me", "get", True),
    ("/api/users/me/preferences", "get", True),
    ("/api/users/me/progress", "post", True),
]
PLAIN_GET_PATHS = ["/healthz", "/readyz", "/api/schema", "/api/docs"]


@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize("path, method, needs_user", ACCOUNTS_PATHS)
def test_accounts_paths_answer_with_and_without_a_trailing_slash_without_redirect(
    api_client, auth_client, path, method, needs_user, slash
):
    client = auth_client if needs_user else api_client

    response = getattr(client, method)(path + slash, {}, format="json")

    assert response.status_code not in (301, 302, 307, 308)
    assert response.status_code != 404
    assert response.status_code < 500


@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize("path", PLAIN_GET_PATHS)
def test_plumbing_paths_answer_with_and_without_a_trailing_slash(client, path, slash):
    response = client.get(path + slash)

    assert response.status_code == 200, (path + slash, response.status_code)


def test_both_slash_forms_give_the_same_answer(auth_client):
    assert auth_client.get("/api/users/me").json() == auth_client.get("/api/users/me/").json()


@pytest.mark.parametrize(
    "path", ["/nope", "/api/nope", "/api/users/me/nope", "/api/users/you", "/api/auth/", "/api", "/"]
)
def test_unknown_paths_are_a_404_envelope(api_client, path):
    assert_error(api_client.get(path), 404, "not_found")
    assert_error(api_client.post(path, {}, format="json"), 404, "not_found")


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/auth/register"),
        ("get", "/api/auth/token"),
        ("delete", "/api/auth/token/refresh"),
        ("get", "/api/auth/logout"),
        ("put", "/api/users/me/preferences"),
        ("get", "/api/users/me/progress"),
        ("put", "/api/users/me"),
        ("post", "/healthz"),
        ("delete", "/readyz"),
        ("post", "/healthz/"),
    ],
)
def test_wrong_method_is_a_405_envelope(auth_client, method, path):
    assert_error(getattr(auth_client, method)(path), 405, "method_not_allowed")


def _spectacular(*args) -> str:
    # The command never resets drf-spectacular's global warning counter; start from zero so
    # warnings from schemas generated earlier in the run are not blamed on this one.
    GENERATOR_STATS.reset()
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", *args, stdout=out)
    return out.getvalue()


def test_openapi_schema_of_the_whole_project_validates_without_warnings():
    assert '"/api/auth/register"' in _spectacular()


def test_openapi_schema_of_accounts_and_plumbing_validates_without_warnings():
    schema = _spectacular("--urlconf", "tests.config.accounts_urlconf")

    assert '"/api/users/me/progress"' in schema


def test_schema_endpoint_serves_openapi_3_with_the_accounts_paths(client):
    response = client.get("/api/schema", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in (
        "/api/auth/register",
        "/api/auth/token",
        "/api/auth/token/refresh",
        "/api/auth/logout",
        "/api/users/me",
        "/api/users/me/preferences",
        "/api/users/me/progress",
    ):
        assert path in schema["paths"], path
    assert {"jwtAuth", "jwtCookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_swagger_ui_is_served_from_local_static_files_not_a_cdn(client):
    response = client.get("/api/docs")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert not re.search(r"jsdelivr\.net|unpkg\.com|cdnjs\.|googleapis\.com|https?://", html, re.I)
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets), assets
    assert any(a.endswith("swagger-ui.css") for a in assets), assets
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not a local static file"


@pytest.mark.parametrize("path", ["/healthz", "/api/users/me", "/api/nope"])
def test_a_request_for_a_host_not_allowed_is_a_400_envelope(client, path):
    client.raise_request_exception = False

    assert_error(client.get(path, HTTP_HOST="evil.example"), 400, "bad_request")


def test_a_path_with_invalid_percent_encoding_is_not_a_500(client):
    client.raise_request_exception = False

    response = client.get("/api/users/%ff%fe")

    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("path", ["/api/nope", "/nowhere/at/all", "/api/jobs/not-a-uuid/files/x/y"])
def test_an_unknown_path_is_the_json_envelope_even_with_debug_on(client, settings, path):
    settings.DEBUG = True  # where Django would otherwise answer its HTML technical 404 page
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "not_found"
