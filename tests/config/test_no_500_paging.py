"""Issue 19 §6: paging input that used to answer 500 (`?page=` past bigint, a cursor nested past
the interpreter's stack) answers a 4xx envelope, on every list the API offers."""

import base64
import json

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from credits.services import credits_grant
from tests.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db

BEYOND_BIGINT = str(2**63 * 10)


def _parameterless_lists() -> list[str]:
    """Every GET operation of the schema that takes ?page= and no path parameter."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = []
    for url, operations in schema["paths"].items():
        get = operations.get("get")
        if get is None or "{" in url:
            continue
        if any(p.get("name") == "page" and p.get("in") == "query" for p in get.get("parameters", [])):
            paths.append(url)
    return sorted(paths)


LISTS = _parameterless_lists()


def test_the_schema_offers_paged_lists():
    # The parametrised tests below must run on something, anonymous lists included.
    assert "/api/credits/transactions" in LISTS and "/api/jobs" in LISTS
    assert "/api/credits/packages" in LISTS


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize("page", [BEYOND_BIGINT, str(2**63 // 20), "9" * 40])
def test_a_page_number_beyond_bigint_is_a_404_on_every_list(url, page, user):
    for client in (client_for(user), Client()):
        response = client.get(url, {"page": page}, HTTP_ACCEPT="application/json")

        assert response.status_code < 500, (url, response.status_code, response.content[:300])
        if response.status_code != 200 or "error" in response.json():
            assert set(response.json()) == {"error"}


def test_a_page_number_beyond_bigint_is_the_invalid_page_404(user):
    credits_grant(user=user, amount=1, idempotency_key="page-bigint")

    response = client_for(user).get(f"/api/credits/transactions?page={BEYOND_BIGINT}")

    assert_error(response, 404, "not_found")


def _cursor(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


@pytest.mark.parametrize("depth", [65, 5000, 200_000])
def test_a_deeply_nested_cursor_is_a_400(user, depth):
    token = _cursor('{"v":' + "[" * depth + "]" * depth + "}")

    response = client_for(user).get("/api/credits/transactions", {"cursor": token})

    assert_error(response, 400, "invalid_cursor")


def test_a_cursor_with_an_out_of_range_number_is_not_a_500(user):
    # Lists ordered by an integer field (jobs by priority) take the value from the cursor.
    token = _cursor(json.dumps({"v": [str(2**70), "2026-01-01T00:00:00Z", "1"], "r": False}))

    response = client_for(user).get("/api/jobs", {"cursor": token})

    assert response.status_code in (200, 400), response.content[:300]
