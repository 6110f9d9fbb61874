import uuid

import pytest

from credits.models import CreditTransaction, Payment
from credits.selectors import balance_get
from tests.conftest import assert_error, client_for
from tests.credits.conftest import run_in_threads
from tests.credits.factories import CreditPackageFactory, PaymentFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/credits/purchases"


def buy(client, package, provider=None):
    data = {"package_id": str(package.id)}
    if provider is not None:
        data["provider"] = provider
    return client.post(URL, data, format="json")


def test_purchase_of_a_paid_package_opens_a_pending_payment_with_checkout(user, auth_client, seeded_package):
    package = seeded_package("Popular Pack")

    response = buy(auth_client, package, "truemoney")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["provider"] == "truemoney"
    assert body["amount"] == "299.00" and body["currency"] == "THB" and body["credits"] == 10
    assert body["checkout"]["type"] == "deeplink" and body["checkout"]["amount"] == "299.00"
    assert body["gateway_payment_id"] == body["checkout"]["reference"]
    assert balance_get(user=user) == 0
    assert Payment.objects.get(pk=body["id"]).user == user


@pytest.mark.parametrize("provider, kind", [("promptpay", "qr"), ("truemoney", "deeplink")])
def test_each_provider_returns_its_checkout_payload(auth_client, seeded_package, provider, kind):
    package = seeded_package("Starter Pack")

    body = buy(auth_client, package, provider).json()

    assert body["checkout"]["type"] == kind


def test_promptpay_qr_payload_carries_amount_and_a_valid_crc(auth_client, seeded_package):
    from credits.providers import _crc16

    package = seeded_package("Starter Pack")
    payload = buy(auth_client, package, "promptpay").json()["checkout"]["qr_payload"]

    assert "540599.00" in payload and "5303764" in payload
    assert payload[-4:] == f"{_crc16(payload[:-4].encode()):04X}"


def test_free_package_completes_at_once_and_grants_its_credit(user, auth_client, seeded_package):
    package = seeded_package("Trial Pack")

    response = auth_client.post(URL, {"package_id": str(package.id)}, format="json")

    assert response.status_code == 201
    assert response.json()["status"] == "completed" and response.json()["provider"] == "free"
    assert balance_get(user=user) == 1
    assert CreditTransaction.objects.get(user=user).type == "purchase"


def test_free_package_claimed_twice_is_409(user, auth_client, seeded_package):
    package = seeded_package("Trial Pack")
    auth_client.post(URL, {"package_id": str(package.id)}, format="json")

    response = auth_client.post(URL, {"package_id": str(package.id), "provider": "free"}, format="json")

    assert_error(response, 409, "free_package_already_claimed")
    assert balance_get(user=user) == 1
    assert Payment.objects.filter(user=user).count() == 1


@pytest.mark.django_db(transaction=True)
def test_free_package_claimed_concurrently_is_granted_once():
    # transactional tests start from a flushed database: no seeded packages
    user = UserFactory()
    package_id = str(CreditPackageFactory(price=0, credits=1).id)

    def claim():
        return client_for(user).post(URL, {"package_id": package_id}, format="json").status_code

    statuses = run_in_threads(claim, [()] * 8)

    assert sorted(statuses) == [201] + [409] * 7
    assert balance_get(user=user) == 1


def test_paid_package_needs_a_real_provider(auth_client, seeded_package):
    package = seeded_package("Pro Pack")
    for data in ({"package_id": str(package.id)}, {"package_id": str(package.id), "provider": "free"}):
        error = assert_error(auth_client.post(URL, data, format="json"), 400, "validation_error")
        assert "provider" in error["fields"]
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"package_id": "not-a-uuid", "provider": "stripe"},
        {"package_id": str(uuid.uuid4()), "provider": "stripe"},
        {"package_id": 12, "provider": "stripe"},
        {"package_id": None},
        {"package_id": "PKG", "provider": "bitcoin"},
        {"package_id": ["x"], "provider": {"a": 1}},
        {"package_id": "x" * 100_000},
    ],
)
def test_purchase_with_garbage_input_is_400_and_creates_nothing(auth_client, data):
    assert_error(auth_client.post(URL, data, format="json"), 400, "validation_error")
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    "raw, content_type",
    [
        ("{not json", "application/json"),
        ("[1, 2]", "application/json"),
        ('"text"', "application/json"),
        ("null", "application/json"),
        ("<xml/>", "application/xml"),
    ],
)
def test_purchase_with_malformed_body_is_4xx_envelope(auth_client, raw, content_type):
    response = auth_client.generic("POST", URL, raw, content_type=content_type)
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)
    assert not Payment.objects.exists()


def test_inactive_package_cannot_be_bought(auth_client, seeded_package):
    package = seeded_package("Pro Pack")
    package.is_active = False
    package.save()
    assert_error(buy(auth_client, package, "stripe"), 400, "validation_error")


def test_purchase_requires_authentication(api_client, seeded_package):
    package = seeded_package("Pro Pack")
    assert_error(buy(api_client, package, "stripe"), 401)
    assert not Payment.objects.exists()


def test_payments_list_only_the_callers_payments(
    user, other_user, auth_client, django_assert_max_num_queries
):
    mine = PaymentFactory.create_batch(3, user=user)
    PaymentFactory(user=other_user)

    with django_assert_max_num_queries(4):
        response = auth_client.get("/api/credits/payments")

    assert response.status_code == 200
    assert {r["id"] for r in response.json()["results"]} == {str(p.id) for p in mine}
    assert response.json()["results"][0]["package_name"].startswith("Test Pack")


def test_payments_list_filters_by_status_and_rejects_unknown_status(user, auth_client):
    PaymentFactory(user=user)
    PaymentFactory(user=user, status=Payment.Status.FAILED)

    assert auth_client.get("/api/credits/payments?status=failed").json()["count"] == 1
    assert_error(auth_client.get("/api/credits/payments?status=weird"), 400, "validation_error")


def test_payment_detail_of_the_caller(user, auth_client):
    payment = PaymentFactory(user=user)
    response = auth_client.get(f"/api/credits/payments/{payment.id}/")
    assert response.status_code == 200 and response.json()["id"] == str(payment.id)


def test_another_users_payment_is_404(other_user, auth_client):
    payment = PaymentFactory(user=other_user)
    assert_error(auth_client.get(f"/api/credits/payments/{payment.id}"), 404, "not_found")


@pytest.mark.parametrize(
    "path", ["/api/credits/payments/not-a-uuid", f"/api/credits/payments/{uuid.uuid4()}"]
)
def test_unknown_or_malformed_payment_id_is_404(auth_client, path):
    assert_error(auth_client.get(path), 404, "not_found")


def test_payments_require_authentication(api_client, user):
    payment = PaymentFactory(user=user)
    assert_error(api_client.get("/api/credits/payments"), 401)
    assert_error(api_client.get(f"/api/credits/payments/{payment.id}"), 401)
