import json
import uuid
from decimal import Decimal

import pytest
import time_machine

from config.signing import sign
from credits.models import CreditTransaction, Payment, PaymentEvent, WebhookLog
from credits.selectors import balance_get
from credits.services import credits_charge
from tests.conftest import assert_error
from tests.credits.conftest import run_in_threads
from tests.credits.factories import PaymentFactory

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_secret"
PROVIDERS = ("stripe", "promptpay", "truemoney", "razorpay", "free")


@pytest.fixture(autouse=True)
def _webhook_secrets(settings):
    settings.PAYMENT_WEBHOOK_SECRETS = {provider: SECRET for provider in PROVIDERS}


def event(payment, type="payment.succeeded", **overrides):
    body = {
        "event_id": f"evt_{uuid.uuid4().hex}",
        "type": type,
        "payment_id": str(payment.id),
        "amount": str(payment.amount),
        "currency": payment.currency,
    }
    body.update(overrides)
    return body


def deliver(client, payload, *, provider="truemoney", secret=SECRET, timestamp=None, header=None, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    if header is None:
        header = sign(body, secret, timestamp)
    extra = {"HTTP_X_SIGNATURE": header} if header != "" else {}
    return client.generic(
        "POST", f"/api/webhooks/payments/{provider}", body, content_type="application/json", **extra
    )


@pytest.fixture
def payment(user):
    return PaymentFactory(user=user, provider="truemoney")


def test_succeeded_event_completes_payment_and_grants_credits_once(api_client, payment, user):
    payload = event(payment, transaction_id="ch_123", receipt_url="https://pay.example/r/1")

    response = deliver(api_client, payload)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "processed"
    payment.refresh_from_db()
    assert payment.status == "completed" and payment.transaction_id == "ch_123"
    assert payment.receipt_url == "https://pay.example/r/1" and payment.completed_at is not None
    assert balance_get(user=user) == 10
    row = CreditTransaction.objects.get(user=user)
    assert row.type == "purchase" and row.payment == payment and row.amount == 10
    log = WebhookLog.objects.get()
    assert (log.provider, log.event_id, log.outcome, log.signature_valid, log.status_code) == (
        "truemoney",
        payload["event_id"],
        "processed",
        True,
        200,
    )
    assert log.payment == payment and log.payload == payload and "x-signature" in log.headers


def test_same_event_delivered_twice_grants_once_and_logs_both(api_client, payment, user):
    payload = event(payment)

    first, second = deliver(api_client, payload), deliver(api_client, payload)

    assert first.json()["status"] == "processed" and second.json()["status"] == "duplicate"
    assert balance_get(user=user) == 10
    assert list(WebhookLog.objects.order_by("created_at").values_list("outcome", flat=True)) == [
        "processed",
        "duplicate",
    ]


def test_second_success_event_with_another_id_grants_nothing_more(api_client, payment, user):
    deliver(api_client, event(payment))

    response = deliver(api_client, event(payment))

    assert response.status_code == 200
    assert balance_get(user=user) == 10
    assert CreditTransaction.objects.filter(user=user).count() == 1


def test_failed_event_marks_payment_failed_without_credits(api_client, payment, user):
    response = deliver(api_client, event(payment, "payment.failed", failure_reason="card declined"))

    assert response.json()["status"] == "processed"
    payment.refresh_from_db()
    assert payment.status == "failed" and payment.failure_reason == "card declined"
    assert balance_get(user=user) == 0


def test_late_failure_after_success_is_ignored(api_client, payment, user):
    deliver(api_client, event(payment))

    response = deliver(api_client, event(payment, "payment.failed"))

    assert response.status_code == 200 and response.json()["status"] == "ignored"
    payment.refresh_from_db()
    assert payment.status == "completed" and balance_get(user=user) == 10


def test_refund_claws_back_the_credits(api_client, payment, user, ledger_sum):
    deliver(api_client, event(payment))

    response = deliver(api_client, event(payment, "payment.refunded"))

    assert response.json()["status"] == "processed"
    payment.refresh_from_db()
    assert payment.status == "refunded" and payment.refunded_amount == payment.amount
    assert payment.credits_clawed_back == 10 and payment.refund_shortfall == 0
    assert balance_get(user=user) == 0 == ledger_sum(user)
    clawback = CreditTransaction.objects.get(user=user, type="adjustment")
    assert clawback.amount == -10 and clawback.payment == payment


def test_refund_after_credits_were_spent_never_goes_below_zero_and_records_shortfall(
    api_client, payment, user, ledger_sum
):
    deliver(api_client, event(payment))
    credits_charge(user=user, amount=7, idempotency_key="job:1:charge")

    response = deliver(api_client, event(payment, "payment.refunded"))

    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == "refunded"
    assert payment.credits_clawed_back == 3 and payment.refund_shortfall == 7
    assert balance_get(user=user) == 0 == ledger_sum(user)


def test_refund_when_everything_was_spent_writes_no_ledger_row(api_client, payment, user):
    deliver(api_client, event(payment))
    credits_charge(user=user, amount=10, idempotency_key="job:1:charge")

    deliver(api_client, event(payment, "payment.refunded"))

    payment.refresh_from_db()
    assert payment.refund_shortfall == 10 and payment.credits_clawed_back == 0
    assert not CreditTransaction.objects.filter(type="adjustment").exists()


def test_refund_arriving_before_success_means_credits_are_never_granted(api_client, payment, user):
    refund = deliver(api_client, event(payment, "payment.refunded"))
    success = deliver(api_client, event(payment))

    assert refund.json()["status"] == "processed"
    assert success.status_code == 200 and success.json()["status"] == "ignored"
    payment.refresh_from_db()
    assert payment.status == "refunded" and payment.credits_clawed_back == 0 and payment.refund_shortfall == 0
    assert balance_get(user=user) == 0
    assert not CreditTransaction.objects.filter(user=user).exists()


def test_refund_delivered_twice_claws_back_once(api_client, payment, user):
    deliver(api_client, event(payment))
    payload = event(payment, "payment.refunded")
    deliver(api_client, payload)
    deliver(api_client, payload)
    deliver(api_client, event(payment, "payment.refunded"))

    assert CreditTransaction.objects.filter(user=user, type="adjustment").count() == 1
    assert balance_get(user=user) == 0


def _assert_refused(response, status, code, user, outcome):
    assert_error(response, status, code)
    assert balance_get(user=user) == 0
    assert not CreditTransaction.objects.exists() and not PaymentEvent.objects.exists()
    log = WebhookLog.objects.get()
    assert log.outcome == outcome and log.status_code == status
    return log


def test_bad_signature_is_refused_and_logged(api_client, payment, user):
    log = _assert_refused(
        deliver(api_client, event(payment), secret="wrong"),
        401,
        "invalid_signature",
        user,
        "invalid_signature",
    )
    assert log.signature_valid is False and (log.source, log.provider) == ("payments", "truemoney")
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_missing_signature_header_is_refused_and_logged(api_client, payment, user):
    _assert_refused(
        deliver(api_client, event(payment), header=""), 400, "missing_signature", user, "invalid_signature"
    )


def test_malformed_signature_header_is_refused_and_logged(api_client, payment, user):
    _assert_refused(
        deliver(api_client, event(payment), header="t=now,v1=zz"),
        400,
        "invalid_signature_header",
        user,
        "invalid_signature",
    )


@pytest.mark.parametrize("skew", [301, -301])
def test_timestamp_301_seconds_old_or_in_the_future_is_refused(api_client, payment, user, skew):
    # The clock is pinned: a real one can cross a second between signing and verifying and make
    # the gap 300 s (accepted) instead of 301.
    now = 1_800_000_000
    with time_machine.travel(now, tick=False):
        response = deliver(api_client, event(payment), timestamp=now - skew)
    _assert_refused(response, 401, "stale_signature", user, "invalid_signature")


def test_signature_over_another_body_is_refused(api_client, payment, user):
    header = sign(json.dumps(event(payment, amount="1.00")).encode(), SECRET)
    _assert_refused(
        deliver(api_client, event(payment), header=header),
        401,
        "invalid_signature",
        user,
        "invalid_signature",
    )


def test_unconfigured_secret_refuses_everything(api_client, payment, user, settings):
    settings.PAYMENT_WEBHOOK_SECRETS = {**settings.PAYMENT_WEBHOOK_SECRETS, "truemoney": ""}
    _assert_refused(
        deliver(api_client, event(payment), secret=""),
        401,
        "webhook_not_configured",
        user,
        "invalid_signature",
    )


def test_secret_is_read_from_settings_at_call_time(api_client, payment, user, settings):
    settings.PAYMENT_WEBHOOK_SECRETS = {**settings.PAYMENT_WEBHOOK_SECRETS, "truemoney": "rotated"}
    assert deliver(api_client, event(payment), secret="rotated").status_code == 200
    assert balance_get(user=user) == 10


def test_unknown_provider_is_404_and_logged(api_client, payment, user):
    response = deliver(api_client, event(payment), provider="paypal")
    log = _assert_refused(response, 404, "unknown_provider", user, "rejected")
    assert (log.source, log.provider) == ("payments", "paypal")


def test_event_for_another_providers_payment_is_refused(api_client, payment, user):
    _assert_refused(
        deliver(api_client, event(payment), provider="promptpay"), 404, "payment_not_found", user, "rejected"
    )


@pytest.mark.parametrize("amount", ["299.01", "0.00", "2990.00", 299])
def test_amount_mismatch_is_rejected_and_logged(api_client, user, amount):
    payment = PaymentFactory(user=user, amount=Decimal("300.00"))
    response = deliver(api_client, event(payment, amount=amount))
    _assert_refused(response, 400, "amount_mismatch", user, "rejected")
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_amount_as_json_number_matching_is_accepted(api_client, user):
    payment = PaymentFactory(user=user, amount=Decimal("300.00"))
    body = json.dumps(event(payment)).replace('"300.00"', "300.00").encode()
    assert deliver(api_client, None, raw=body).status_code == 200
    assert balance_get(user=user) == 10


def test_currency_mismatch_is_rejected_and_logged(api_client, payment, user):
    _assert_refused(
        deliver(api_client, event(payment, currency="USD")), 400, "currency_mismatch", user, "rejected"
    )


def test_rejected_event_id_can_be_delivered_again_correctly(api_client, payment, user):
    bad = event(payment, amount="1.00")
    deliver(api_client, bad)

    good = {**bad, "amount": str(payment.amount)}
    assert deliver(api_client, good).json()["status"] == "processed"
    assert balance_get(user=user) == 10


@pytest.mark.parametrize("payment_id", [str(uuid.uuid4()), "not-a-uuid", "0"])
def test_unknown_payment_is_404_and_logged(api_client, payment, user, payment_id):
    response = deliver(api_client, event(payment, payment_id=payment_id))
    _assert_refused(response, 404, "payment_not_found", user, "rejected")


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[1, 2]",
        b'"x"',
        b"",
        b"\xff\xfe",
        b'{"a": NaN}',
        b'{"event_id": "e\\u0000", "type": "payment.succeeded"}',
        b"[" * 100_000,
    ],
)
def test_malformed_json_is_400_and_logged(api_client, payment, user, raw):
    response = deliver(api_client, None, raw=raw)
    assert_error(response, 400)
    assert balance_get(user=user) == 0
    log = WebhookLog.objects.get()
    assert log.outcome == "rejected" and log.signature_valid is True


@pytest.mark.parametrize(
    "overrides",
    [
        {"type": "payment.exploded"},
        {"type": 5},
        {"event_id": ""},
        {"event_id": None},
        {"event_id": "x" * 300},
        {"amount": "abc"},
        {"amount": "-1.00"},
        {"amount": "1.001"},
        {"amount": True},
        {"amount": None},
        {"amount": "1e999999"},
        {"amount": "NaN"},
        {"currency": 3},
        {"payment_id": ["x"]},
    ],
)
def test_invalid_event_fields_are_400_and_logged(api_client, payment, user, overrides):
    response = deliver(api_client, event(payment, **overrides))
    assert_error(response, 400, "validation_error")
    assert balance_get(user=user) == 0
    assert WebhookLog.objects.get().outcome == "rejected"


def test_oversize_body_is_400_and_logged(api_client, payment, user, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    payload = event(payment, padding="x" * 5000)
    _assert_refused(deliver(api_client, payload), 400, "request_too_large", user, "rejected")


def test_get_on_the_webhook_is_405(api_client):
    assert_error(api_client.get("/api/webhooks/payments/truemoney"), 405)


def test_webhook_path_answers_with_trailing_slash(api_client, payment, user):
    body = json.dumps(event(payment)).encode()
    response = api_client.generic(
        "POST",
        "/api/webhooks/payments/truemoney/",
        body,
        content_type="application/json",
        HTTP_X_SIGNATURE=sign(body, SECRET),
    )
    assert response.status_code == 200 and balance_get(user=user) == 10


def test_log_row_survives_when_the_effect_rolls_back(api_client, payment, user, monkeypatch):
    # given an effect that blows up half-way (after the ledger row was written)
    from credits.services import payments

    def broken_save(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(payments.Payment, "save", broken_save)

    # when the delivery is processed
    with pytest.raises(RuntimeError):
        deliver(api_client, event(payment))

    # then nothing of the effect remains, but the delivery is on record
    assert not CreditTransaction.objects.exists() and not PaymentEvent.objects.exists()
    assert balance_get(user=user) == 0
    log = WebhookLog.objects.get()
    assert log.outcome == "error" and log.status_code == 500


@pytest.mark.django_db(transaction=True)
def test_same_webhook_delivered_ten_times_concurrently_grants_once(ledger_sum):
    from rest_framework.test import APIClient

    from tests.factories import UserFactory

    user = UserFactory()
    payment = PaymentFactory(user=user, provider="promptpay")
    payload = event(payment)

    responses = run_in_threads(lambda: deliver(APIClient(), payload, provider="promptpay"), [()] * 10)

    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses == ["duplicate"] * 9 + ["processed"]
    assert balance_get(user=user) == 10 == ledger_sum(user)
    assert CreditTransaction.objects.filter(user=user).count() == 1
    assert WebhookLog.objects.count() == 10
    assert Payment.objects.get(pk=payment.pk).status == "completed"


@pytest.mark.django_db(transaction=True)
def test_distinct_success_events_for_one_payment_concurrently_grant_once(ledger_sum):
    from rest_framework.test import APIClient

    from tests.factories import UserFactory

    user = UserFactory()
    payment = PaymentFactory(user=user)

    responses = run_in_threads(lambda: deliver(APIClient(), event(payment)), [()] * 10)

    assert all(r.status_code == 200 for r in responses)
    assert balance_get(user=user) == 10 == ledger_sum(user)


# --- the shared receiver (issue 9) -------------------------------------------------------------


def test_a_lone_surrogate_in_metadata_is_applied_and_logged(api_client, payment, user):
    body = json.dumps(event(payment, event_id="evt_sur")).encode()[:-1] + b', "metadata": "\\ud800"}'

    response = deliver(api_client, None, raw=body)

    assert response.status_code == 200, response.content
    assert balance_get(user=user) == 10
    log = WebhookLog.objects.get(event_id="evt_sur")
    assert (log.outcome, log.applied, log.payload["metadata"]) == ("processed", True, "\ufffd")


@pytest.mark.parametrize("amount", [b"NaN", b"1e400", b"Infinity"])
def test_non_finite_numbers_are_a_logged_400(api_client, payment, user, amount):
    body = json.dumps(event(payment, event_id="evt_nan", amount="X")).encode().replace(b'"X"', amount)

    assert_error(deliver(api_client, None, raw=body), 400, "parse_error")

    assert balance_get(user=user) == 0
    log = WebhookLog.objects.get(source="payments")
    assert (log.status_code, log.signature_valid, log.payload) == (400, True, None)


def test_a_crash_after_the_effect_rolls_back_the_effect_with_its_log_claim(
    api_client, payment, user, monkeypatch
):
    from credits.services import webhooks as payment_webhooks

    real = payment_webhooks.payment_complete

    def complete_then_crash(**kwargs):
        real(**kwargs)
        raise RuntimeError("crash after the effect")

    monkeypatch.setattr(payment_webhooks, "payment_complete", complete_then_crash)
    with pytest.raises(RuntimeError):
        deliver(api_client, event(payment, event_id="evt_crash"))

    assert balance_get(user=user) == 0
    logged = list(WebhookLog.objects.values_list("outcome", "applied", "status_code"))
    assert logged == [("error", False, 500)]
    monkeypatch.setattr(payment_webhooks, "payment_complete", real)
    assert deliver(api_client, event(payment, event_id="evt_crash")).status_code == 200  # the retry applies
    assert balance_get(user=user) == 10
