"""Stripe and Razorpay through their official SDKs, PromptPay's EMVCo payload.

Only the remote is local: both SDKs are pointed at a local HTTP server (tests/credits/gateway.py,
through STRIPE_API_BASE and RAZORPAY_API_BASE) and run for real over the network: request
building, auth, encoding, error mapping, and the webhook
signature checks (`stripe.Webhook.construct_event`, `razorpay.Utility.verify_webhook_signature`)
against signatures computed with each provider's documented scheme.
"""

import hashlib
import hmac
import json
import threading
import time
import uuid
from decimal import Decimal
from typing import NamedTuple
from urllib.parse import parse_qs

import pytest
from django.db import DatabaseError, connection, transaction
from requests.structures import CaseInsensitiveDict

from accounts.models import Subscription, SubscriptionPlan, User
from accounts.services import subscription_activate
from credits.models import CreditPackage, Payment, WebhookLog
from credits.providers import PROVIDER_FAILED_MESSAGE, _crc16, promptpay_payload
from credits.selectors import balance_get
from tests.conftest import assert_error, client_for
from tests.credits.gateway import Gateway
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

STRIPE_SESSIONS = "/v1/checkout/sessions"
RAZORPAY_ORDERS = "/v1/orders"
STRIPE_WHSEC = "whsec_stripe_test"
RAZORPAY_WHSEC = "razorpay_webhook_secret"


@pytest.fixture(autouse=True)
def _keys(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_123"
    settings.RAZORPAY_KEY_ID = "rzp_test_key"
    settings.RAZORPAY_KEY_SECRET = "rzp_test_secret"
    settings.PAYMENT_WEBHOOK_SECRETS = {
        **settings.PAYMENT_WEBHOOK_SECRETS,
        "stripe": STRIPE_WHSEC,
        "razorpay": RAZORPAY_WHSEC,
    }


class Remote:
    """Stripe's and Razorpay's APIs on the local gateway: `post(path, json=, status=)` sets what a
    path answers, `add_callback(method, path, callback)` answers with `callback(request) ->
    (status, headers, JSON text)` (run in the server's thread, on its own database connection),
    `calls` are the requests that arrived, in order."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway

    def post(self, path: str, *, json: dict, status: int = 200) -> None:
        self.gateway.route("POST", path, lambda request: (status, json))

    def add_callback(self, method: str, path: str, *, callback) -> None:
        def answer(request):
            try:
                status, _headers, body = callback(request)
            finally:
                connection.close()  # the server thread's own connection, if the callback used one
            return status, json.loads(body)

        self.gateway.route(method, path, answer)

    @property
    def calls(self) -> list:
        return [Call(Sent(CaseInsensitiveDict(r.headers), r.body.decode())) for r in self.gateway.requests]


class Sent(NamedTuple):
    headers: CaseInsensitiveDict
    body: str


class Call(NamedTuple):
    request: Sent


@pytest.fixture
def remote(settings):
    gateway = Gateway()
    settings.STRIPE_API_BASE = settings.RAZORPAY_API_BASE = gateway.url
    yield Remote(gateway)
    gateway.stop()


def buy(client, package, provider):
    return client.post(
        "/api/credits/purchases", {"package_id": str(package.id), "provider": provider}, format="json"
    )


def stripe_session(session_id="cs_test_a1"):
    return {
        "id": session_id,
        "object": "checkout.session",
        "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        "payment_status": "unpaid",
        "status": "open",
    }


# -- Stripe checkout ------------------------------------------------------------------------------------


def test_stripe_purchase_creates_a_checkout_session_and_returns_its_redirect_url(
    auth_client, user, seeded_package, remote
):
    remote.post(STRIPE_SESSIONS, json=stripe_session())

    response = buy(auth_client, seeded_package("Popular Pack"), "stripe")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["checkout"]["type"] == "redirect"
    assert body["checkout"]["url"] == "https://checkout.stripe.com/c/pay/cs_test_a1"
    assert body["gateway_payment_id"] == "cs_test_a1" and body["status"] == "pending"
    (call,) = remote.calls
    assert call.request.headers["Authorization"] == "Bearer sk_test_123"
    assert call.request.headers["Idempotency-Key"] == f"checkout:{body['id']}"
    sent = parse_qs(call.request.body)
    assert sent["client_reference_id"] == [body["id"]] and sent["mode"] == ["payment"]
    assert sent["line_items[0][price_data][unit_amount]"] == ["29900"]
    assert sent["line_items[0][price_data][currency]"] == ["thb"]
    assert balance_get(user=user) == 0


def test_stripe_subscription_checkout_names_the_plan(auth_client, remote):
    remote.post(STRIPE_SESSIONS, json=stripe_session("cs_test_sub"))

    response = auth_client.post(
        "/api/subscriptions", {"plan": "premium_yearly", "provider": "stripe"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["checkout"]["url"].endswith("cs_test_sub")
    sent = parse_qs(remote.calls[0].request.body)
    assert sent["line_items[0][price_data][product_data][name]"] == ["Premium (yearly)"]
    assert sent["line_items[0][price_data][unit_amount]"] == ["299000"]


@pytest.mark.parametrize("provider", ["stripe", "razorpay"])
def test_a_provider_without_keys_refuses_cleanly_and_nothing_persists(
    auth_client, seeded_package, settings, provider, remote
):
    settings.STRIPE_SECRET_KEY = ""
    settings.RAZORPAY_KEY_SECRET = ""

    package_response = buy(auth_client, seeded_package("Popular Pack"), provider)
    plan_response = auth_client.post(
        "/api/subscriptions", {"plan": "premium_monthly", "provider": provider}, format="json"
    )

    for response in (package_response, plan_response):
        assert_error(response, 400, "provider_unavailable")
    assert Payment.objects.count() == 0
    assert len(remote.calls) == 0


def test_a_stripe_api_error_is_502_and_nothing_persists(auth_client, seeded_package, remote):
    remote.post(
        STRIPE_SESSIONS,
        status=400,
        json={"error": {"type": "invalid_request_error", "message": "Invalid currency: thb"}},
    )

    error = assert_error(buy(auth_client, seeded_package("Popular Pack"), "stripe"), 502, "provider_error")
    assert Payment.objects.count() == 0
    # no internal detail reaches the caller: neither the provider's words nor where it lives
    assert error["message"] == PROVIDER_FAILED_MESSAGE


def user_row_lockable_now(user_id) -> bool:
    """Whether another session could lock the user row at once (FOR UPDATE NOWAIT)."""
    outcome = []

    def other_session():
        try:
            with transaction.atomic():
                User.objects.select_for_update(nowait=True).filter(pk=user_id).values_list("pk").get()
            outcome.append(True)
        except DatabaseError:
            outcome.append(False)
        finally:
            connection.close()

    thread = threading.Thread(target=other_session)
    thread.start()
    thread.join()
    return outcome == [True]


@pytest.mark.parametrize("what", ["package", "plan"])
def test_no_lock_is_held_while_the_gateway_answers(transactional_db, reference_data, remote, what):
    user = UserFactory()
    seen = []

    def gateway(request):
        # the gateway is slow: meanwhile the user's other requests must not wait on the user row
        seen.append((user_row_lockable_now(user.pk), Payment.objects.filter(user=user).count()))
        return 200, {}, json.dumps(stripe_session())

    remote.add_callback("POST", STRIPE_SESSIONS, callback=gateway)
    client = client_for(user)
    if what == "package":
        response = buy(client, CreditPackage.objects.get(name="Popular Pack"), "stripe")
    else:
        response = client.post(
            "/api/subscriptions", {"plan": "premium_monthly", "provider": "stripe"}, format="json"
        )

    assert response.status_code == 201, response.content
    assert seen == [(True, 0)]  # unlocked, and the payment is written after the gateway answered
    assert Payment.objects.get(user=user).gateway_payment_id == "cs_test_a1"


def test_a_purchase_refused_while_the_gateway_answered_writes_nothing(
    transactional_db, reference_data, remote
):
    # the user's subscription becomes active and renewing while the checkout is being created
    user = UserFactory()

    def gateway(request):
        subscription_activate(user_id=user.pk, plan=SubscriptionPlan.objects.get(code="premium_monthly"))
        return 200, {}, json.dumps(stripe_session())

    remote.add_callback("POST", STRIPE_SESSIONS, callback=gateway)
    response = client_for(user).post(
        "/api/subscriptions", {"plan": "premium_monthly", "provider": "stripe"}, format="json"
    )

    assert_error(response, 409, "already_subscribed")
    assert not Payment.objects.filter(user=user).exists()


# -- Stripe webhooks -----------------------------------------------------------------------------------


def stripe_header(body: bytes, *, secret=STRIPE_WHSEC, timestamp=None) -> str:
    """Stripe's documented scheme: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<payload>">."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def stripe_event(payment, type="checkout.session.completed", **obj):
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": type,
        "data": {
            "object": {
                "id": payment.gateway_payment_id or "cs_test_x",
                "object": "checkout.session",
                "client_reference_id": str(payment.id),
                "amount_total": int(payment.amount * 100),
                "currency": payment.currency.lower(),
                "payment_status": "paid",
                "payment_intent": "pi_test_1",
                **obj,
            }
        },
    }


def to_stripe(client, payload, *, header=None, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    extra = {} if header == "" else {"HTTP_STRIPE_SIGNATURE": header or stripe_header(body)}
    return client.generic(
        "POST", "/api/webhooks/payments/stripe", body, content_type="application/json", **extra
    )


@pytest.fixture
def stripe_payment(auth_client, seeded_package, remote):
    remote.post(STRIPE_SESSIONS, json=stripe_session())
    return Payment.objects.get(pk=buy(auth_client, seeded_package("Popular Pack"), "stripe").json()["id"])


def test_a_paid_checkout_session_completes_the_payment_once(api_client, stripe_payment, user):
    payload = stripe_event(stripe_payment)

    first = to_stripe(api_client, payload)
    again = to_stripe(api_client, payload)

    assert first.status_code == 200 and first.json()["status"] == "processed", first.content
    assert again.json()["status"] == "duplicate"
    stripe_payment.refresh_from_db()
    assert stripe_payment.status == "completed" and stripe_payment.transaction_id == "pi_test_1"
    assert balance_get(user=user) == 10
    log = WebhookLog.objects.filter(outcome="processed").get()
    assert log.provider == "stripe" and "stripe-signature" in log.headers and log.payment == stripe_payment


def test_a_stripe_event_found_by_its_session_id_alone_completes(api_client, stripe_payment, user):
    payload = stripe_event(stripe_payment, client_reference_id=None)

    assert to_stripe(api_client, payload).json()["status"] == "processed"
    assert balance_get(user=user) == 10


def test_a_checkout_for_a_plan_activates_the_subscription(api_client, auth_client, user, remote):
    remote.post(STRIPE_SESSIONS, json=stripe_session("cs_test_plan"))
    payment_id = auth_client.post(
        "/api/subscriptions", {"plan": "premium_monthly", "provider": "stripe"}, format="json"
    ).json()["id"]

    response = to_stripe(api_client, stripe_event(Payment.objects.get(pk=payment_id)))

    assert response.json()["status"] == "processed"
    assert Subscription.objects.get(user=user).status == "active"


@pytest.mark.parametrize(
    "type, status",
    [("checkout.session.async_payment_failed", "failed"), ("checkout.session.expired", "failed")],
)
def test_failed_or_expired_sessions_fail_the_payment(api_client, stripe_payment, user, type, status):
    assert (
        to_stripe(api_client, stripe_event(stripe_payment, type, payment_status="unpaid")).status_code == 200
    )

    stripe_payment.refresh_from_db()
    assert stripe_payment.status == status and balance_get(user=user) == 0


@pytest.mark.parametrize(
    "payload_change",
    [
        {"type": "payment_intent.created"},
        {"type": "checkout.session.completed", "data": {"object": {"payment_status": "unpaid"}}},
    ],
)
def test_events_that_move_no_money_are_acknowledged_and_ignored(
    api_client, stripe_payment, user, payload_change
):
    payload = stripe_event(stripe_payment)
    payload["type"] = payload_change["type"]
    payload["data"]["object"].update(payload_change.get("data", {}).get("object", {}))

    response = to_stripe(api_client, payload)

    assert response.status_code == 200 and response.json()["status"] == "ignored"
    stripe_payment.refresh_from_db()
    assert stripe_payment.status == "pending" and balance_get(user=user) == 0


def test_a_fully_refunded_stripe_charge_refunds_the_payment_and_claws_back(api_client, stripe_payment, user):
    to_stripe(api_client, stripe_event(stripe_payment))
    charge = {
        "id": "ch_test_1",
        "object": "charge",
        "amount": 29900,
        "currency": "thb",
        "refunded": True,
        "payment_intent": "pi_test_1",
        "metadata": {"payment_id": str(stripe_payment.id)},
    }
    partial = {**charge, "refunded": False}

    ignored = to_stripe(
        api_client, {"id": "evt_partial", "type": "charge.refunded", "data": {"object": partial}}
    )
    refunded = to_stripe(
        api_client, {"id": "evt_full", "type": "charge.refunded", "data": {"object": charge}}
    )

    assert ignored.json()["status"] == "ignored" and refunded.json()["status"] == "processed"
    stripe_payment.refresh_from_db()
    assert stripe_payment.status == "refunded" and balance_get(user=user) == 0


def test_stripe_signature_failures_are_refused_and_logged(api_client, stripe_payment, user):
    payload = stripe_event(stripe_payment)
    body = json.dumps(payload).encode()
    from config.signing import sign

    cases = [
        (
            to_stripe(api_client, payload, header=stripe_header(body, secret="whsec_wrong")),
            401,
            "invalid_signature",
        ),
        (
            to_stripe(api_client, payload, header=stripe_header(body, timestamp=int(time.time()) - 400)),
            401,
            "invalid_signature",
        ),
        (to_stripe(api_client, payload, header=stripe_header(b"{}")), 401, "invalid_signature"),
        (to_stripe(api_client, payload, header="garbage"), 401, "invalid_signature"),
        (to_stripe(api_client, payload, header=""), 400, "missing_signature"),
        # the generic scheme is not Stripe's: an X-Signature alone is no signature here
        (
            api_client.generic(
                "POST",
                "/api/webhooks/payments/stripe",
                body,
                content_type="application/json",
                HTTP_X_SIGNATURE=sign(body, STRIPE_WHSEC),
            ),
            400,
            "missing_signature",
        ),
    ]

    for response, status, code in cases:
        assert_error(response, status, code)
    assert WebhookLog.objects.filter(outcome="invalid_signature", provider="stripe").count() == len(cases)
    stripe_payment.refresh_from_db()
    assert stripe_payment.status == "pending" and balance_get(user=user) == 0


@pytest.mark.parametrize(
    "raw, status",
    [
        (b"not json", 400),
        (b"[]", 400),
        (b"null", 400),
        (b'{"id": "evt_1", "type": "checkout.session.completed"}', 400),
        (b'{"id": "evt_1", "type": "checkout.session.completed", "data": {"object": []}}', 400),
        (b"\xff\xfe", 401),  # not UTF-8: cannot be a Stripe event
    ],
)
def test_signed_but_malformed_stripe_bodies_are_refused(api_client, stripe_payment, raw, status):
    response = to_stripe(api_client, None, raw=raw)

    assert_error(response, status)
    stripe_payment.refresh_from_db()
    assert stripe_payment.status == "pending"


def test_a_stripe_amount_mismatch_is_rejected(api_client, stripe_payment, user):
    response = to_stripe(api_client, stripe_event(stripe_payment, amount_total=100))

    assert_error(response, 400, "amount_mismatch")
    assert balance_get(user=user) == 0


def test_an_unconfigured_stripe_webhook_secret_refuses_everything(api_client, stripe_payment, settings):
    settings.PAYMENT_WEBHOOK_SECRETS = {**settings.PAYMENT_WEBHOOK_SECRETS, "stripe": ""}

    assert_error(to_stripe(api_client, stripe_event(stripe_payment)), 401, "webhook_not_configured")


# -- Razorpay -------------------------------------------------------------------------------------------


@pytest.fixture
def razorpay_payment(auth_client, seeded_package, remote):
    remote.post(
        RAZORPAY_ORDERS, json={"id": "order_Test123", "entity": "order", "amount": 29900, "currency": "THB"}
    )
    return Payment.objects.get(pk=buy(auth_client, seeded_package("Popular Pack"), "razorpay").json()["id"])


def test_razorpay_purchase_creates_an_order_and_returns_its_id(auth_client, seeded_package, remote):
    remote.post(
        RAZORPAY_ORDERS, json={"id": "order_Test123", "entity": "order", "amount": 29900, "currency": "THB"}
    )

    response = buy(auth_client, seeded_package("Popular Pack"), "razorpay")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["checkout"] == {
        "type": "sdk",
        "order_id": "order_Test123",
        "amount": 29900,
        "currency": "THB",
        "receipt": body["id"],
        "key_id": "rzp_test_key",
    }
    assert body["gateway_payment_id"] == "order_Test123"
    (call,) = remote.calls
    assert call.request.headers["Authorization"].startswith("Basic ")
    sent = json.loads(call.request.body)
    assert sent == {
        "amount": 29900,
        "currency": "THB",
        "receipt": body["id"],
        "notes": {"payment_id": body["id"]},
    }


@pytest.mark.parametrize(
    "status, body",
    [
        (400, {"error": {"code": "BAD_REQUEST_ERROR", "description": "currency not supported"}}),
        (500, {"error": {}}),
    ],
)
def test_a_razorpay_api_error_is_502_and_nothing_persists(auth_client, seeded_package, remote, status, body):
    remote.post(RAZORPAY_ORDERS, status=status, json=body)

    error = assert_error(buy(auth_client, seeded_package("Popular Pack"), "razorpay"), 502, "provider_error")
    assert Payment.objects.count() == 0
    assert error["message"] == PROVIDER_FAILED_MESSAGE


def razorpay_event(payment, event="payment.captured", **entity):
    return {
        "entity": "event",
        "account_id": "acc_Test",
        "event": event,
        "contains": ["payment"],
        "payload": {
            "payment": {
                "entity": {
                    "id": "pay_Test456",
                    "entity": "payment",
                    "amount": int(payment.amount * 100),
                    "currency": payment.currency,
                    "status": "captured",
                    "order_id": payment.gateway_payment_id,
                    "notes": {"payment_id": str(payment.id)},
                    **entity,
                }
            }
        },
        "created_at": 1_800_000_000,
    }


def to_razorpay(client, payload, *, signature=None, secret=RAZORPAY_WHSEC):
    body = json.dumps(payload).encode()
    if signature is None:
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    extra = {} if signature == "" else {"HTTP_X_RAZORPAY_SIGNATURE": signature}
    return client.generic(
        "POST", "/api/webhooks/payments/razorpay", body, content_type="application/json", **extra
    )


def test_a_captured_razorpay_payment_completes_once(api_client, razorpay_payment, user):
    payload = razorpay_event(razorpay_payment)

    first = to_razorpay(api_client, payload)
    again = to_razorpay(api_client, payload)
    order_paid = to_razorpay(api_client, razorpay_event(razorpay_payment, "order.paid"))

    assert first.json()["status"] == "processed", first.content
    assert again.json()["status"] == "duplicate"
    assert order_paid.status_code == 200
    razorpay_payment.refresh_from_db()
    assert razorpay_payment.status == "completed" and razorpay_payment.transaction_id == "pay_Test456"
    assert balance_get(user=user) == 10


def test_a_razorpay_payment_is_found_by_its_order_id_without_notes(api_client, razorpay_payment, user):
    assert to_razorpay(api_client, razorpay_event(razorpay_payment, notes={})).json()["status"] == "processed"
    assert balance_get(user=user) == 10


def test_a_failed_razorpay_payment_fails(api_client, razorpay_payment, user):
    payload = razorpay_event(
        razorpay_payment, "payment.failed", status="failed", error_description="Card declined"
    )

    assert to_razorpay(api_client, payload).status_code == 200

    razorpay_payment.refresh_from_db()
    assert razorpay_payment.status == "failed" and razorpay_payment.failure_reason == "Card declined"


@pytest.mark.parametrize(
    "signature, status, code",
    [
        ("", 400, "missing_signature"),
        ("0" * 64, 401, "invalid_signature"),
        ("é" * 64, 401, "invalid_signature"),
    ],
)
def test_razorpay_signature_failures_are_refused(api_client, razorpay_payment, user, signature, status, code):
    assert_error(to_razorpay(api_client, razorpay_event(razorpay_payment), signature=signature), status, code)
    assert_error(
        to_razorpay(api_client, razorpay_event(razorpay_payment), secret="another"), 401, "invalid_signature"
    )
    razorpay_payment.refresh_from_db()
    assert razorpay_payment.status == "pending" and balance_get(user=user) == 0


def test_a_razorpay_event_without_a_payment_entity_is_400(api_client, razorpay_payment):
    assert_error(
        to_razorpay(api_client, {"event": "payment.captured", "payload": {}}), 400, "validation_error"
    )


# -- PromptPay ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, amount, expected",
    [
        # Published test vectors of the widely used promptpay-qr generator (dtinth/promptpay-qr).
        ("0801234567", None, "00020101021129370016A000000677010111011300668012345675802TH530376463046197"),
        (
            "+66-89-123-4567",
            None,
            "00020101021129370016A000000677010111011300668912345675802TH5303764630429C1",
        ),
        ("1111111111111", None, "00020101021129370016A000000677010111021311111111111115802TH530376463047B5A"),
        ("0123456789012", None, "00020101021129370016A000000677010111021301234567890125802TH530376463040CBD"),
        (
            "000-000-0000",
            Decimal("4.22"),
            "00020101021229370016A000000677010111011300660000000005802TH530376454044.226304E469",
        ),
    ],
)
def test_promptpay_payload_matches_published_vectors(target, amount, expected):
    assert promptpay_payload(target=target, amount=amount) == expected


def test_promptpay_payload_with_a_reference_has_a_valid_crc():
    payload = promptpay_payload(target="0801234567", amount=Decimal("299.00"), reference="pp0123")

    assert "5406299.00" in payload and "62100506pp0123" in payload
    assert payload.endswith(f"6304{_crc16(payload[:-4].encode()):04X}")
    assert _crc16(b"123456789") == 0x29B1  # the CRC-16/CCITT-FALSE check value


def test_a_misconfigured_promptpay_id_refuses_cleanly(auth_client, seeded_package, settings):
    settings.PROMPTPAY_MERCHANT_ID = "not-an-id"

    assert_error(buy(auth_client, seeded_package("Popular Pack"), "promptpay"), 400, "provider_unavailable")
    assert Payment.objects.count() == 0


@pytest.mark.parametrize("target", ["", "12345", "abc", "1" * 14])
def test_promptpay_refuses_ids_that_are_not_promptpay_ids(target):
    with pytest.raises(ValueError):
        promptpay_payload(target=target)
