"""Payment received: a completed payment is announced once by email, with its receipt / tax
invoice attached as a PDF, sent after commit by a real worker."""

import json
import subprocess
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import transaction
from rest_framework.test import APIClient

from config.signing import sign
from credits.emails import lifecycle_email_once
from credits.models import EmailSent, Payment, Receipt
from credits.services.payments import payment_complete
from tests.conftest import client_for
from tests.credits.conftest import run_in_threads
from tests.credits.factories import CreditPackageFactory, PaymentFactory

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
SECRET = "whsec_lifecycle_test"


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.PAYMENT_WEBHOOK_SECRETS = {**settings.PAYMENT_WEBHOOK_SECRETS, "truemoney": SECRET}


def deliver(payment, *, event_id=None):
    body = json.dumps(
        {
            "event_id": event_id or f"evt_{uuid.uuid4().hex}",
            "type": "payment.succeeded",
            "payment_id": str(payment.id),
            "amount": str(payment.amount),
            "currency": payment.currency,
        }
    ).encode()
    return APIClient().generic(
        "POST",
        f"/api/webhooks/payments/{payment.provider}",
        body,
        content_type="application/json",
        HTTP_X_SIGNATURE=sign(body, SECRET),
    )


def pdf_text(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "attached.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True).stdout.decode()


def test_credits_bought_and_paid_by_webhook_email_the_receipt_pdf_once(user, sent, tmp_path):
    package = CreditPackageFactory(name="Email Pack", price=Decimal("299.00"), credits=100)
    with time_machine.travel(NOW, tick=False):
        client = client_for(user)
        created = client.post(
            "/api/credits/purchases", {"package_id": str(package.id), "provider": "truemoney"}, format="json"
        )
        assert created.status_code == 201, created.content
        payment = Payment.objects.get(pk=created.json()["id"])
        with sent.capture():
            first = deliver(payment, event_id="evt_a")
            again = deliver(payment, event_id="evt_a")  # redelivered
            other = deliver(payment, event_id="evt_b")  # another success notice for the same payment
    assert first.status_code == 200 and first.json()["status"] == "processed"
    assert again.json()["status"] == "duplicate" and other.status_code == 200

    [message] = sent.wait(1)
    number = Receipt.objects.get(payment=payment).number
    assert message.to == [user.email]
    assert "299.00 THB" in message.subject and number in message.subject
    assert "Email Pack (100 credits)" in message.body
    [(filename, content, mimetype)] = message.attachments
    assert (filename, mimetype) == (f"{number}.pdf", "application/pdf")
    assert number in pdf_text(content, tmp_path)
    assert (
        EmailSent.objects.filter(user=user, kind="payment_received", object_id=str(payment.pk)).count() == 1
    )


def test_concurrent_triggers_of_one_event_record_one_email(user):
    payment = PaymentFactory(user=user)

    def trigger(_):
        with transaction.atomic():
            return lifecycle_email_once(user_id=user.pk, kind="payment_received", object_id=payment.pk)

    results = run_in_threads(trigger, [(i,) for i in range(8)])

    assert sorted(results) == [False] * 7 + [True]
    assert EmailSent.objects.filter(user=user, object_id=str(payment.pk)).count() == 1


def test_a_completion_that_rolls_back_sends_nothing_and_leaves_no_proof(
    user, django_capture_on_commit_callbacks
):
    payment = PaymentFactory(user=user)
    with django_capture_on_commit_callbacks() as callbacks:
        try:
            with transaction.atomic():
                payment_complete(payment=payment)
                raise RuntimeError("the request failed after the completion")
        except RuntimeError:
            pass

    assert callbacks == [] and not EmailSent.objects.filter(user=user).exists()
