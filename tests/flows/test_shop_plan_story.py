"""A shop owner's story through the public API only: the free plan's limit stops them, they buy a
plan (retrying the request safely), the provider confirms it, and the limit is lifted."""

import json
import uuid

import pytest

from config.signing import sign
from shops.models import ShopPlan
from tests.shops.test_plans import seed_shop_plans

SECRET = "whsec_flow_plans"
PASSWORD = "Flow-story-pass-42"


@pytest.fixture(autouse=True)
def _truemoney_secret(settings):
    settings.PAYMENT_WEBHOOK_SECRETS = {**settings.PAYMENT_WEBHOOK_SECRETS, "truemoney": SECRET}


@pytest.mark.django_db(transaction=True)  # each request commits, as in production
def test_owner_hits_the_free_item_limit_buys_basic_and_can_add_more(api_client):
    # given a new owner with a shop on the free plan, one item short of its limit
    seed_shop_plans()
    ShopPlan.objects.filter(code="free").update(max_items=1)
    registered = api_client.post(
        "/api/auth/register",
        {"email": "owner@example.com", "password": PASSWORD, "password_confirm": PASSWORD, "name": "Owner"},
        format="json",
    )
    assert registered.status_code == 201, registered.content
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {registered.json()['tokens']['access']}")
    shop = api_client.post("/api/shops", {"name": "Noodles"}, format="json").json()
    items = f"/api/shops/{shop['id']}/items"
    first_item = api_client.post(items, {"sku": "A", "name": "A", "price": "10.00"}, format="json")
    assert first_item.status_code == 201

    # when the next item is refused by the plan
    refused = api_client.post(items, {"sku": "B", "name": "B", "price": "10.00"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "plan_limit"

    # and the owner buys basic (a flaky network makes the app send the request twice)
    body = {"plan": "basic", "billing_cycle": "monthly", "provider": "truemoney"}
    key = {"HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4())}
    first = api_client.post(f"/api/shops/{shop['id']}/plan", body, format="json", **key)
    again = api_client.post(f"/api/shops/{shop['id']}/plan", body, format="json", **key)
    assert first.status_code == 201, first.content
    assert again.json()["id"] == first.json()["id"]
    payment = first.json()

    # and TrueMoney confirms it with a signed webhook
    event = json.dumps(
        {
            "event_id": f"evt_{uuid.uuid4().hex}",
            "type": "payment.succeeded",
            "payment_id": payment["id"],
            "amount": payment["amount"],
            "currency": payment["currency"],
        }
    ).encode()
    confirmed = api_client.generic(
        "POST",
        "/api/webhooks/payments/truemoney",
        event,
        content_type="application/json",
        HTTP_X_SIGNATURE=sign(event, SECRET),
    )
    assert confirmed.status_code == 200, confirmed.content

    # then the shop shows basic with its limits and usage, and the item goes in
    details = api_client.get(f"/api/shops/{shop['id']}").json()["plan_details"]
    assert details["code"] == "basic" and details["status"] == "active"
    assert details["limits"]["max_items"] == 1000 and details["usage"]["items"] == 1
    added = api_client.post(items, {"sku": "B", "name": "B", "price": "10.00"}, format="json")
    assert added.status_code == 201, added.content
