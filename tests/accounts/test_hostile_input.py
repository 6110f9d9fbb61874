"""Garbage on every accounts endpoint: always a 4xx in the error envelope, never a 500, and
nothing in the database moves."""

import json

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import License, Subscription, User, UserPreferences
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

# (method, path, needs a logged-in caller, the fields it reads)
ENDPOINTS = [
    (
        "post",
        "/api/auth/register",
        False,
        [
            "email",
            "password",
            "password_confirm",
            "name",
            "phone_number",
            "organization",
            "job_title",
            "country",
            "industry",
        ],
    ),
    ("post", "/api/auth/token", False, ["email", "password"]),
    ("post", "/api/auth/token/refresh", False, ["refresh"]),
    ("post", "/api/auth/logout", False, ["refresh"]),
    (
        "patch",
        "/api/users/me",
        True,
        ["name", "phone_number", "organization", "job_title", "country", "industry"],
    ),
    ("patch", "/api/users/me/preferences", True, ["video_defaults", "notifications", "ui"]),
    ("post", "/api/users/me/progress", True, ["time_spent_delta", "step"]),
]
IDS = [f"{m.upper()} {p}" for m, p, _, _ in ENDPOINTS]

RAW_BODIES = {
    "not-json": (b"{this is not json", "application/json"),
    "truncated-json": (b'{"email": "a@b.c", ', "application/json"),
    "json-array": (b'[{"email": "a@example.com"}, 2, 3]', "application/json"),
    "json-null": (b"null", "application/json"),
    "json-string": (b'"just a string"', "application/json"),
    "json-number": (b"42", "application/json"),
    "json-true": (b"true", "application/json"),
    "nan-literal": (b'{"step": NaN, "time_spent_delta": Infinity}', "application/json"),
    "5000-digit-number": (b'{"step": 1' + b"0" * 5000 + b', "time_spent_delta": 1}', "application/json"),
    "deeply-nested": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    "invalid-utf8": (b'{"name": "\xff\xfe\xfa"}', "application/json"),
    "nul-bytes": (
        json.dumps({"email": "a\x00@example.com", "name": "a\x00b", "refresh": "a\x00b"}).encode(),
        "application/json",
    ),
    "huge-body": (json.dumps({"name": "x" * (1024 * 1024 + 10)}).encode(), "application/json"),
    "huge-form-body": (b"name=" + b"x" * (1024 * 1024 + 10), "application/x-www-form-urlencoded"),
    "text-plain": (b"email=a@example.com", "text/plain"),
    "xml": (b"<user><name>x</name></user>", "application/xml"),
    "broken-multipart": (
        b'--zzz\r\nContent-Disposition: form-data; name="name"\r\n\r\nx',
        "multipart/form-data; boundary=zzz",
    ),
    "multipart-without-boundary": (b"whatever", "multipart/form-data"),
}

WRONG_VALUES = {
    "object": {"nested": {"deeper": [1, 2, 3]}},
    "list": ["a", "b"],
    "10k-string": "x" * 10_000,
    "bool": True,
    "huge-int": 10**30,
    "negative": -5,
    "float": 1.5,
}


def _snapshot():
    return (
        sorted(map(str, User.objects.values_list())),
        sorted(map(str, UserPreferences.objects.values_list())),
        sorted(map(str, License.objects.values_list())),
        Subscription.objects.count(),
        OutstandingToken.objects.count(),
        BlacklistedToken.objects.count(),
    )


def _client(needs_user, user) -> APIClient:
    return client_for(user) if needs_user else APIClient()


def _assert_4xx_envelope(response):
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] and body["error"]["message"]


@pytest.mark.parametrize("kind", RAW_BODIES)
@pytest.mark.parametrize("method, path, needs_user, fields", ENDPOINTS, ids=IDS)
def test_malformed_bodies_get_a_4xx_envelope_and_change_nothing(user, method, path, needs_user, fields, kind):
    body, content_type = RAW_BODIES[kind]
    client = _client(needs_user, user)
    before = _snapshot()

    response = getattr(client, method)(path, data=body, content_type=content_type)

    _assert_4xx_envelope(response)
    assert _snapshot() == before


@pytest.mark.parametrize("value_kind", WRONG_VALUES)
@pytest.mark.parametrize("method, path, needs_user, fields", ENDPOINTS, ids=IDS)
def test_wrong_types_in_every_field_get_a_4xx_envelope_and_change_nothing(
    user, method, path, needs_user, fields, value_kind
):
    client = _client(needs_user, user)
    value = WRONG_VALUES[value_kind]
    # DRF's CharField reads a number as its decimal string: "-5" is a valid (if odd) job title.
    lenient = path == "/api/users/me" and value_kind in ("huge-int", "negative", "float")

    for field in fields:
        before = _snapshot()
        response = getattr(client, method)(path, {field: value}, format="json")
        if lenient:
            assert response.status_code == 200
            continue
        _assert_4xx_envelope(response)
        assert _snapshot() == before, field


@pytest.mark.parametrize("method, path, needs_user, fields", ENDPOINTS, ids=IDS)
def test_every_field_filled_with_10k_characters_is_a_400(user, method, path, needs_user, fields):
    client = _client(needs_user, user)
    before = _snapshot()

    response = getattr(client, method)(path, {f: "y" * 10_000 for f in fields}, format="json")

    _assert_4xx_envelope(response)
    assert response.status_code == 400
    assert _snapshot() == before
