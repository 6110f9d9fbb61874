"""Staff refunds of Stripe and Razorpay payments move money through the providers' refund APIs.

The SDKs call a local HTTP server (tests/credits/gateway.py) that checks their wire format and
answers as the real APIs do. A refund is applied once, whichever of the API answer and the
provider's refund notice comes first, however often the notice is delivered; a refund the
provider refuses changes nothing and the staff member is told why.
"""

import json
import uuid
from base64 import b64encode
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test import Client
from django.urls import reverse

from credits.models import CreditTransaction, Payment, PaymentRefund
from credits.selectors import balance_get
from credits.services import credits_charge
from tests.credits.factories import CreditPackageFactory, PaymentFactory
from tests.credits.gateway import Gateway
from tests.credits.test_providers import razorpay_event, stripe_event, to_razorpay, to_stripe
from tests.factories import UserFactory, admin_login

STRIPE_WHSEC = "whsec_stripe_test"
RAZORPAY_WHSEC = "razorpay_webhook_secret"
PAYMENT_INTENT = "pi_3Refund"
RAZORPAY_PAYMENT = "pay_Refund123"


@pytest.fixture
def gateway(settings):
    server = Gateway()
    settings.STRIPE_SECRET_KEY = "sk_test_123"
    settings.RAZORPAY_KEY_ID = "rzp_test_key"
    settings.RAZORPAY_KEY_SECRET = "rzp_test_secret"
    settings.STRIPE_API_BASE = server.url
    settings.RAZORPAY_API_BASE = server.url
    settings.PAYMENT_WEBHOOK_SECRETS = {
        **settings.PAYMENT_WEBHOOK_SECRETS,
        "stripe": STRIPE_WHSEC,
        "razorpay": RAZORPAY_WHSEC,
    }
    yield server
    server.stop()


@pytest.fixture
def staff():
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(staff):
    client = Client()
    admin_login(client, staff)
    return client


def paid_through(provider: str) -> Payment:
    """A 299.00 THB payment for 10 credits, completed by the provider's signed success notice
    (which is where its provider payment id comes from)."""
    package = CreditPackageFactory(price=Decimal("299.00"), credits=10)
    payment = PaymentFactory(provider=provider, package=package, gateway_payment_id=f"{provider}_checkout_1")
    if provider == "stripe":
        response = to_stripe(Client(), stripe_event(payment, payment_intent=PAYMENT_INTENT))
    else:
        response = to_razorpay(Client(), razorpay_event(payment, id=RAZORPAY_PAYMENT))
    assert response.status_code == 200 and response.json()["status"] == "processed", response.content
    payment.refresh_from_db()
    assert payment.status == "completed"
    return payment


def refund_url(payment):
    return reverse("admin:credits_payment_refund", args=[payment.pk])


def refund_path(provider):
    return "/v1/refunds" if provider == "stripe" else f"/v1/payments/{RAZORPAY_PAYMENT}/refund"


def refund_object(provider, request, *, status=None) -> dict:
    """What the provider answers to a refund create: built from the request, as the API does."""
    if provider == "stripe":
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        return {
            "id": f"re_{uuid.uuid4().hex[:14]}",
            "object": "refund",
            "amount": int(form["amount"]),
            "currency": "thb",
            "charge": "ch_3Refund",
            "payment_intent": form["payment_intent"],
            "reason": form.get("reason"),
            "status": status or "succeeded",
            "metadata": {
                "payment_id": form["metadata[payment_id]"],
                "refund_key": form["metadata[refund_key]"],
            },
        }
    data = json.loads(request.body)
    return {
        "id": f"rfnd_{uuid.uuid4().hex[:14]}",
        "entity": "refund",
        "amount": data["amount"],
        "currency": "THB",
        "payment_id": request.path.split("/")[3],
        "notes": data["notes"],
        "receipt": data.get("receipt"),
        "status": status or "processed",
        "speed_requested": data.get("speed"),
    }


def refund_notice(provider, refund: dict, payment: Payment, *, kind=None) -> dict:
    if provider == "stripe":
        return {
            "id": f"evt_{uuid.uuid4().hex[:20]}",
            "object": "event",
            "type": kind or "refund.created",
            "data": {"object": refund},
        }
    event = razorpay_event(payment, kind or "refund.processed", id=RAZORPAY_PAYMENT)
    event["payload"]["refund"] = {"entity": refund}
    return event


def deliver(provider, client, notice):
    return (to_stripe if provider == "stripe" else to_razorpay)(client, notice)


def assert_refund_wire_format(provider, request, payment, *, minor: int):
    if provider == "stripe":
        assert request.headers["authorization"] == "Bearer sk_test_123"
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        assert request.headers["idempotency-key"].startswith("refund:admin:")
        form = parse_qs(request.body.decode())
        assert form["payment_intent"] == [PAYMENT_INTENT] and form["amount"] == [str(minor)]
        assert form["metadata[payment_id]"] == [str(payment.pk)]
        assert form["metadata[refund_key]"] == [request.headers["idempotency-key"].removeprefix("refund:")]
    else:
        credentials = b64encode(b"rzp_test_key:rzp_test_secret").decode()
        assert request.headers["authorization"] == f"Basic {credentials}"
        assert request.headers["content-type"] == "application/json"
        body = json.loads(request.body)
        assert body["amount"] == minor and body["notes"]["payment_id"] == str(payment.pk)
        assert body["notes"]["refund_key"].startswith("admin:")


def staff_refund(client, payment, amount: str, reason="customer asked"):
    page = client.get(refund_url(payment))
    assert page.status_code == 200
    token = str(page.context["form"].initial["token"])
    data = {"amount": amount, "reason": reason, "token": token}
    return client.post(refund_url(payment), data), data


# -- the provider's payment id ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("provider, expected", [("stripe", PAYMENT_INTENT), ("razorpay", RAZORPAY_PAYMENT)])
def test_the_success_notice_keeps_the_providers_payment_id(gateway, provider, expected):
    assert paid_through(provider).provider_payment_id == expected


# -- API answer first, then the notice, ten times ---------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("provider", ["stripe", "razorpay"])
def test_a_staff_refund_calls_the_provider_and_its_notice_redelivered_ten_times_changes_nothing(
    gateway, admin_client, staff, provider
):
    # given a completed payment of 10 credits
    payment = paid_through(provider)
    answers = []

    def create(request):
        answers.append(refund_object(provider, request))
        return 200, answers[-1]

    gateway.route("POST", refund_path(provider), create)

    # when staff refund half of it
    response, _ = staff_refund(admin_client, payment, "149.50")

    # then the provider was asked once, in its wire format, and the refund is applied
    assert response.status_code == 302, response.content
    (call,) = gateway.requests
    assert call.method == "POST" and call.path == refund_path(provider)
    assert_refund_wire_format(provider, call, payment, minor=14950)
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount, payment.credits_clawed_back) == (
        "completed",
        Decimal("149.50"),
        5,
    )
    (refund,) = PaymentRefund.objects.filter(payment=payment)
    assert refund.provider_refund_id == answers[0]["id"] and refund.created_by == staff
    message = LogEntry.objects.get(object_id=str(payment.pk)).get_change_message()
    assert f"refund {answers[0]['id']}" in message

    # when the provider's notice of that refund arrives ten times, and a second notice kind too
    notice = refund_notice(provider, answers[0], payment)
    replies = [deliver(provider, Client(), notice) for _ in range(10)]
    other_kind = "refund.updated" if provider == "stripe" else "refund.created"
    replies.append(deliver(provider, Client(), refund_notice(provider, answers[0], payment, kind=other_kind)))

    # then nothing more happens
    assert all(r.status_code == 200 for r in replies), [r.content for r in replies]
    assert PaymentRefund.objects.filter(payment=payment).count() == 1
    payment.refresh_from_db()
    assert (payment.refunded_amount, payment.credits_clawed_back) == (Decimal("149.50"), 5)
    assert balance_get(user=payment.user) == 5
    assert CreditTransaction.objects.filter(payment=payment, type="adjustment").count() == 1


# -- the notice first, while the API answer is on its way ------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("provider", ["stripe", "razorpay"])
def test_a_refund_notice_that_overtakes_the_api_answer_applies_the_refund_once(
    gateway, admin_client, staff, provider
):
    payment = paid_through(provider)
    delivered = []

    def create(request):
        # the provider sends its signed notice, and it is processed, before the API answers
        refund = refund_object(provider, request)
        try:
            delivered.append(deliver(provider, Client(), refund_notice(provider, refund, payment)))
        finally:
            connection.close()
        return 200, refund

    gateway.route("POST", refund_path(provider), create)

    response, _ = staff_refund(admin_client, payment, "299.00")

    assert response.status_code == 302, response.content
    assert [r.json()["status"] for r in delivered] == ["processed"]
    (refund,) = PaymentRefund.objects.filter(payment=payment)
    assert refund.event is not None  # applied by the notice; the answer found it done
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount, payment.credits_clawed_back) == (
        "refunded",
        Decimal("299.00"),
        10,
    )
    assert balance_get(user=payment.user) == 0
    assert CreditTransaction.objects.filter(payment=payment, type="adjustment").count() == 1
    assert len(gateway.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_a_whole_charge_refunded_notice_before_the_answer_counts_as_that_refund(gateway, admin_client):
    # Stripe also sends `charge.refunded` for the charge as a whole; arriving first, it refunds
    # what is left, and the staff refund's answer then finds nothing left to apply.
    payment = paid_through("stripe")
    delivered = []

    def create(request):
        charge = {
            "id": "ch_3Refund",
            "object": "charge",
            "amount": 29900,
            "amount_refunded": 29900,
            "refunded": True,
            "currency": "thb",
            "payment_intent": PAYMENT_INTENT,
            "metadata": {},
        }
        notice = {"id": "evt_charge_refunded", "object": "event", "type": "charge.refunded"}
        try:
            delivered.append(deliver("stripe", Client(), {**notice, "data": {"object": charge}}))
        finally:
            connection.close()
        return 200, refund_object("stripe", request)

    gateway.route("POST", "/v1/refunds", create)

    response, _ = staff_refund(admin_client, payment, "299.00")

    assert response.status_code == 302, response.content
    assert [r.json()["status"] for r in delivered] == ["processed"]
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount, payment.credits_clawed_back) == ("refunded", 299, 10)
    assert PaymentRefund.objects.filter(payment=payment).count() == 1
    assert balance_get(user=payment.user) == 0


# -- refusals --------------------------------------------------------------------------------------


STRIPE_REFUSAL = {
    "error": {
        "type": "invalid_request_error",
        "code": "charge_already_refunded",
        "message": "Charge ch_3Refund has already been refunded.",
        "request_log_url": "https://dashboard.stripe.com/test/logs/req_local",
    }
}
RAZORPAY_REFUSAL = {
    "error": {
        "code": "BAD_REQUEST_ERROR",
        "description": "The amount to be refunded is more than the amount captured.",
        "source": "business",
        "step": "payment_initiation",
        "reason": "input_validation_failed",
        "metadata": {},
    }
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "provider, refusal, why",
    [
        ("stripe", STRIPE_REFUSAL, "Charge ch_3Refund has already been refunded."),
        ("razorpay", RAZORPAY_REFUSAL, "The amount to be refunded is more than the amount captured."),
    ],
)
def test_a_refund_the_provider_refuses_changes_nothing_and_says_why(
    gateway, admin_client, provider, refusal, why
):
    payment = paid_through(provider)
    gateway.route("POST", refund_path(provider), lambda request: (400, refusal))

    response, _ = staff_refund(admin_client, payment, "100.00")

    assert response.status_code == 200  # the form again, with the reason
    assert why in response.content.decode()
    assert len(gateway.requests) == 1
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount, payment.credits_clawed_back) == ("completed", 0, 0)
    assert not PaymentRefund.objects.filter(payment=payment).exists()
    assert balance_get(user=payment.user) == 10
    assert not LogEntry.objects.filter(object_id=str(payment.pk)).exists()


@pytest.mark.django_db
def test_a_provider_that_cannot_be_reached_changes_nothing(gateway, admin_client, settings):
    payment = paid_through("stripe")
    gateway.route("POST", "/v1/refunds", lambda request: (500, {"error": {"type": "api_error"}}))

    response, _ = staff_refund(admin_client, payment, "100.00")

    assert response.status_code == 200 and "Stripe could not take the refund" in response.content.decode()
    payment.refresh_from_db()
    assert payment.refunded_amount == 0 and balance_get(user=payment.user) == 10


@pytest.mark.django_db
def test_a_payment_whose_provider_id_is_unknown_is_refused_before_asking_the_provider(gateway, admin_client):
    payment = paid_through("stripe")
    Payment.objects.filter(pk=payment.pk).update(provider_payment_id="")

    response, _ = staff_refund(admin_client, payment, "100.00")

    assert response.status_code == 200 and "payment id is unknown" in response.content.decode()
    assert gateway.requests == []
    assert not PaymentRefund.objects.filter(payment=payment).exists()


# -- once per request; never below zero ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("provider", ["stripe", "razorpay"])
def test_resubmitting_one_refund_form_asks_the_provider_once(gateway, admin_client, provider):
    payment = paid_through(provider)
    gateway.route("POST", refund_path(provider), lambda request: (200, refund_object(provider, request)))

    first, data = staff_refund(admin_client, payment, "100.00")
    again = admin_client.post(refund_url(payment), data)

    assert first.status_code == 302 and again.status_code in (200, 302)
    assert len(gateway.requests) == 1
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("100.00")
    assert PaymentRefund.objects.filter(payment=payment).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("provider", ["stripe", "razorpay"])
def test_credits_already_spent_are_not_clawed_back_below_zero(gateway, admin_client, provider):
    payment = paid_through(provider)
    credits_charge(user=payment.user, amount=8, idempotency_key="spent", reason="jobs")
    gateway.route("POST", refund_path(provider), lambda request: (200, refund_object(provider, request)))

    response, _ = staff_refund(admin_client, payment, "299.00")

    assert response.status_code == 302
    payment.refresh_from_db()
    assert (payment.status, payment.credits_clawed_back, payment.refund_shortfall) == ("refunded", 2, 8)
    assert balance_get(user=payment.user) == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("provider", "endpoint"), [("stripe", "refunds.create"), ("razorpay", "payments.refund")]
)
def test_each_refund_call_writes_one_usage_row(gateway, admin_client, provider, endpoint):
    from jobs.models import ApiUsageLog

    payment = paid_through(provider)
    gateway.route("POST", refund_path(provider), lambda request: (200, refund_object(provider, request)))

    response, _ = staff_refund(admin_client, payment, "100.00")

    assert response.status_code == 302
    rows = list(
        ApiUsageLog.objects.filter(provider=provider).values_list("endpoint", "status_code", "succeeded")
    )
    assert rows == [(endpoint, 200, True)]
