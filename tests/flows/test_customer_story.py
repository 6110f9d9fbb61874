"""Cross-app stories: what a customer does end to end, through the public API only."""

import json
import uuid

import pytest

from config.signing import sign
from credits.selectors import credits_audit
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

SECRET = "whsec_flow"
PASSWORD = "Flow-story-pass-42"


@pytest.fixture(autouse=True)
def _truemoney_secret(settings):
    settings.PAYMENT_WEBHOOK_SECRETS = {**settings.PAYMENT_WEBHOOK_SECRETS, "truemoney": SECRET}


def _signed_post(client, path: str, payload: dict):
    body = json.dumps(payload).encode()
    return client.generic(
        "POST", path, body, content_type="application/json", HTTP_X_SIGNATURE=sign(body, SECRET)
    )


@pytest.mark.django_db(transaction=True)  # each request commits, as in production (stats roll up at commit)
def test_register_buy_credits_run_a_batch_and_get_failed_units_back(api_client, reference_data):
    # given a new customer
    registered = api_client.post(
        "/api/auth/register",
        {"email": "Story@Example.com", "password": PASSWORD, "password_confirm": PASSWORD, "name": "Story"},
        format="json",
    )
    assert registered.status_code == 201, registered.content
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {registered.json()['tokens']['access']}")
    assert api_client.get("/api/users/me").json()["credit_balance"] == 0

    # when they buy the Popular Pack and the provider confirms the payment
    packages = api_client.get("/api/credits/packages").json()
    packages = packages["results"] if isinstance(packages, dict) else packages
    popular = next(p for p in packages if p["name"] == "Popular Pack")
    purchase = api_client.post(
        "/api/credits/purchases", {"package_id": popular["id"], "provider": "truemoney"}, format="json"
    )
    assert purchase.status_code == 201, purchase.content
    payment = purchase.json()
    payment = payment.get("payment", payment)
    assert payment["status"] == "pending"
    confirmed = _signed_post(
        api_client,
        "/api/webhooks/payments/truemoney",
        {
            "event_id": f"evt_{uuid.uuid4().hex}",
            "type": "payment.succeeded",
            "payment_id": payment["id"],
            "amount": popular["price"],
            "currency": "THB",
        },
    )
    assert confirmed.status_code == 200, confirmed.content

    # then the credits are theirs
    assert api_client.get("/api/credits/balance").json()["balance"] == 10

    # when an external worker reports a 4-account batch where one account failed
    reports = [("processing", 0, 0), ("completed", 3, 1), ("processing", 0, 0)]  # the late one is ignored
    for status, successful, failed in reports:
        report = api_client.patch(
            "/api/stats",
            {
                "job_id": "ext-story-1",
                "requested_count": 4,
                "successful_count": successful,
                "failed_count": failed,
                "status": status,
            },
            format="json",
        )
        assert report.status_code == 200, report.content
    assert report.json() == {
        "job_id": "ext-story-1",
        "requested_count": 4,
        "successful_count": 3,
        "failed_count": 1,
        "status": "completed",
    }

    # then 4 credits were charged once and the failed unit came back once
    assert api_client.get("/api/users/me").json()["credit_balance"] == 10 - 4 + 1
    ledger = api_client.get("/api/credits/transactions").json()["results"]
    assert sorted((row["type"], row["amount"]) for row in ledger) == [
        ("purchase", 10),
        ("refund", 1),
        ("usage", -4),
    ]
    stats = api_client.get("/api/stats").json()
    assert (stats["jobs"], stats["requested"], stats["successful"], stats["failed"]) == (1, 4, 3, 1)
    assert credits_audit() == []


def test_a_customer_without_credits_cannot_queue_paid_work_and_nothing_is_left_behind(auth_client):
    refused = auth_client.post(
        "/api/jobs", {"kind": "video_render", "requested_count": 2, "params": {}}, format="json"
    )

    assert_error(refused, 402, "insufficient_credits")
    assert auth_client.get("/api/jobs").json()["count"] == 0
    assert auth_client.get("/api/credits/transactions").json()["count"] == 0
