"""Issue 19 §6: a database that cannot be reached — nothing listening, or no connection slot
left — is a 503 envelope with Retry-After, never a 500. Caused for real: the connection is
pointed at a closed port, or at a role whose CONNECTION LIMIT is exhausted."""

import socket
from contextlib import contextmanager

import pytest
from django.db import connection, connections
from django.test import Client
from rest_framework.test import APIClient

from credits.models import CreditPackage
from tests.conftest import assert_error, client_for
from tests.factories import UserFactory, admin_login

pytestmark = pytest.mark.django_db(transaction=True)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def database_connection_settings(**overrides):
    """Requests in this block connect to the database with these settings; the test's own
    connection is closed first and reopened with the real settings afterwards."""
    default = connections["default"]
    saved = dict(default.settings_dict)
    default.close()
    default.settings_dict.update(overrides)
    try:
        yield
    finally:
        default.close()
        default.settings_dict.clear()
        default.settings_dict.update(saved)


@contextmanager
def exhausted_role():
    """A login role with CONNECTION LIMIT 0: connecting as it is PostgreSQL's "too many
    connections for role", the same refusal as a pool of max_connections used up."""
    role = f"{connection.settings_dict['NAME']}_limited"[:63]
    with connection.cursor() as cursor:
        cursor.execute(f'DROP ROLE IF EXISTS "{role}"')
        cursor.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
    try:
        yield role
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP ROLE IF EXISTS "{role}"')


def assert_unavailable(response):
    error = assert_error(response, 503, "service_unavailable")
    assert int(response["Retry-After"]) > 0
    assert error["retry_after"] == int(response["Retry-After"])
    text = response.content.decode()
    for detail in ("127.0.0.1", "port", "role", "psycopg", "connection failed"):
        assert detail not in text, text


def test_a_closed_database_port_is_a_503_with_retry_after_on_a_public_list():
    with database_connection_settings(PORT=str(_closed_port())):
        response = APIClient().get("/api/credits/packages")

    assert_unavailable(response)


def test_an_exhausted_connection_limit_is_a_503_for_an_authenticated_request():
    user = UserFactory()
    client = client_for(user)
    with exhausted_role() as role, database_connection_settings(USER=role):
        response = client.get("/api/credits/balance")

    assert_unavailable(response)


def test_a_database_outage_outside_the_api_views_is_a_503_too():
    # The admin is plain Django: its session lookup fails in middleware, before any DRF view.
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client(raise_request_exception=False)
    admin_login(client, staff)
    with database_connection_settings(PORT=str(_closed_port())):
        response = client.get("/admin/")

    assert_unavailable(response)


def test_the_database_answers_again_once_it_is_back():
    with database_connection_settings(PORT=str(_closed_port())):
        assert APIClient().get("/api/credits/packages").status_code == 503

    response = APIClient().get("/api/credits/packages")

    assert response.status_code == 200
    assert len(response.json()["results"]) == CreditPackage.objects.filter(is_active=True).count()


def assert_names_without_details(response, down: list[str]):
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == down
    assert body["checks"] == {name: ("down" if name in down else "ok") for name in ("database", "redis")}
    text = response.content.decode()
    for detail in ("127.0.0.1", "5432", "port", "role", "psycopg", "Connection refused", "FATAL", "redis://"):
        assert detail not in text, text


def test_readyz_names_an_unreachable_database_without_details(caplog):
    with database_connection_settings(PORT=str(_closed_port())):
        with caplog.at_level("WARNING", logger="config.health"):
            response = Client().get("/readyz")

    assert_names_without_details(response, ["database"])
    assert "Connection refused" in caplog.text  # the operator still sees why, in the log


def test_readyz_names_an_exhausted_database_role_without_details():
    with exhausted_role() as role, database_connection_settings(USER=role):
        response = Client().get("/readyz")

    assert_names_without_details(response, ["database"])


def test_readyz_names_redis_without_details(settings):
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0"},
    }

    assert_names_without_details(Client().get("/readyz"), ["redis"])
