"""Hostile input on every endpoint: always a 4xx in the error envelope, never a 500, nothing changes."""

import json

import pytest

from shops import models as m
from tests.shops.test_permissions import requests, world  # noqa: F401  (fixture reused)

pytestmark = pytest.mark.django_db

BIG = "x" * 100_000
FIELDS = [
    "name",
    "slug",
    "currency",
    "timezone",
    "plan",
    "plan_price",
    "email",
    "role",
    "sku",
    "price",
    "cost",
    "kind",
    "category",
    "stock_quantity",
    "low_stock_threshold",
    "change",
    "reason",
    "note",
    "fields",
    "status",
    "details",
    "channel",
    "customer_handle",
    "text",
    "sender",
    "saved_reply_id",
    "keywords",
    "match",
    "reply",
    "priority",
    "title",
    "shortcut",
    "provider",
    "account_id",
    "access_token",
    "customer",
    "lines",
    "payment_method_id",
    "is_active",
    "track_stock",
    "customer_name",
    "account_name",
    "description",
]

HOSTILE_BODIES = {
    "nested objects": {f: {"$gt": ""} for f in FIELDS},
    "lists": {f: [[1], {"a": None}] for f in FIELDS},
    "huge strings": {f: BIG for f in FIELDS},
    "nul characters": {f: "a\x00b" for f in FIELDS},
    "huge numbers": {f: 10**30 for f in FIELDS},
    "negative numbers": {f: -(10**12) for f in FIELDS},
    "unknown enums": {
        **{f: "definitely-not-valid" for f in FIELDS},
        "customer": {"name": "a\x00"},
        "lines": [{"item_id": "00000000-0000-0000-0000-000000000000", "quantity": 1}],
    },
    "nulls": dict.fromkeys(FIELDS),
}
RAW_BODIES = {
    "not json": "{not json",
    "json array": "[1, 2, 3]",
    "json string": '"just a string"',
    "json null": "null",
    "json number": "1e999999",
    "deep nesting": "[" * 5000 + "]" * 5000,
    "bad unicode": "{" + ", ".join(f'"{f}": "\\ud800"' for f in FIELDS) + "}",
    "oversize": json.dumps({"name": "x" * (2 * 1024 * 1024)}),
}


def snapshot() -> dict:
    return {
        "counts": {
            model.__name__: model.objects.count()
            for model in (
                m.Shop,
                m.TeamMember,
                m.Item,
                m.StockHistory,
                m.Form,
                m.FormSubmission,
                m.FormSubmissionLine,
                m.PaymentMethod,
                m.Conversation,
                m.Message,
                m.KeywordReply,
                m.SavedReply,
                m.SocialIntegration,
            )
        },
        "items": sorted(m.Item.objects.values_list("sku", "name", "stock_quantity", "price")),
        "roles": sorted(m.TeamMember.objects.values_list("user_id", "role")),
        "orders": sorted(m.FormSubmission.objects.values_list("id", "status")),
        "shops": sorted(m.Shop.objects.values_list("name", "plan", "slug")),
        "conversations": sorted(m.Conversation.objects.values_list("id", "status", "customer_name")),
    }


def write_endpoints(w) -> list[tuple[str, str]]:
    seen = []
    for _, method, path, _ in requests(w):
        if method in ("post", "patch") and (method, path) not in seen:
            seen.append((method, path))
    seen.append(("post", "/api/shops"))
    seen.append(("post", f"/api/public/forms/{w['form'].slug}/submit"))
    return seen


def assert_4xx_envelope(response, context):
    assert 400 <= response.status_code < 500, (context, response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"], (context, body)


def test_hostile_json_bodies_on_every_write_endpoint_are_refused(world, user):  # noqa: F811
    from tests.shops.factories import make_member

    client = _owner_client(world)
    endpoints = write_endpoints(world)
    before = snapshot()
    for method, path in endpoints:
        for label, body in HOSTILE_BODIES.items():
            if label == "unknown enums" and "saved-replies" in path:
                continue  # no enum there: the same strings are a valid saved reply
            response = getattr(client, method)(path, body, format="json")
            assert_4xx_envelope(response, (method, path, label))
    assert snapshot() == before
    assert make_member


def test_malformed_raw_bodies_on_every_write_endpoint_are_refused(world):  # noqa: F811
    client = _owner_client(world)
    endpoints = write_endpoints(world)
    before = snapshot()
    for method, path in endpoints:
        for label, raw in RAW_BODIES.items():
            response = getattr(client, method)(path, raw, content_type="application/json")
            assert_4xx_envelope(response, (method, path, label))
        response = getattr(client, method)(path, "name=x", content_type="text/plain")
        assert_4xx_envelope(response, (method, path, "text/plain"))
    assert snapshot() == before


@pytest.mark.parametrize(
    "query",
    [
        "page=-1",
        "page=abc",
        "page_size=abc",
        "page=99999",
        "status=nope",
        "from=2026-02-30",
        "to=yesterday",
        "low_stock=2",
        "is_active=nah",
        "channel=carrier-pigeon",
        "search=" + "x" * 300,
        "category=" + "y" * 300,
    ],
)
def test_hostile_query_strings_on_every_list_endpoint_are_4xx_or_ignored(world, query):  # noqa: F811
    client = _owner_client(world)
    for _, method, path, _ in requests(world):
        if method != "get":
            continue
        response = client.get(f"{path}?{query}")
        assert response.status_code < 500, (path, query, response.content[:300])
        if response.status_code >= 400:
            assert_4xx_envelope(response, (path, query))


def test_malformed_ids_in_urls_are_404_envelopes(world):  # noqa: F811
    client = _owner_client(world)
    base = f"/api/shops/{world['shop'].pk}"
    for path in (
        "/api/shops/123",
        f"{base}/items/not-a-uuid",
        f"{base}/orders/1",
        f"{base}/items/%00",
        "/api/public/forms/" + "s" * 500,
        "/api/public/forms/bad%20slug/submit",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


def _owner_client(w):
    from tests.conftest import client_for

    return client_for(w["shop"].owner)
