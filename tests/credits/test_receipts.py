"""Every completed paid payment gets a receipt / tax invoice: a gap-free yearly number, the
seller from settings, the buyer (and optional tax id) from the profile, the VAT included for THB;
a PDF (WeasyPrint, Thai and Latin text) at GET /api/payments/<id>/receipt for its owner only."""

import subprocess
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from credits.models import Receipt, ReceiptCounter
from credits.services import payment_complete
from tests.conftest import assert_error, client_for
from tests.credits.conftest import run_in_threads
from tests.credits.factories import CreditPackageFactory, PaymentFactory
from tests.factories import UserFactory

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def receipt_url(payment):
    return f"/api/payments/{payment.pk}/receipt"


def pdf_text(pdf: bytes, tmp_path) -> str:
    """The PDF's text as pdftotext reads it. Thai fonts draw sara am (ำ) with the glyph of sara aa
    (า) and a nikhahit, and a PDF maps each glyph to one character, so extraction may give either
    for both: they are compared as one here."""
    path = tmp_path / "receipt.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True).stdout.decode()
    return thai_aa(text)


def thai_aa(text: str) -> str:
    return text.replace("\u0e33", "\u0e32")


@pytest.mark.django_db
def test_a_completed_thb_payment_gets_a_numbered_tax_invoice_with_vat(settings, tmp_path):
    settings.RECEIPT_SELLER_NAME = "Example Co., Ltd."
    settings.RECEIPT_SELLER_TAX_ID = "0105551234567"
    buyer = UserFactory(name="สมชาย ใจดี", organization="บริษัท ตัวอย่าง จำกัด", tax_id="0105559876543")
    payment = PaymentFactory(
        user=buyer, package=CreditPackageFactory(name="Receipt Pack", price=Decimal("299.00"))
    )

    with time_machine.travel(NOW, tick=False):
        payment_complete(payment=payment)
    response = client_for(buyer).get(receipt_url(payment))

    receipt = Receipt.objects.get(payment=payment)
    assert receipt.number == "INV-2026-000001"
    assert (receipt.vat_rate, receipt.vat_amount, receipt.net_amount) == (
        Decimal("7.00"),
        Decimal("19.56"),  # 299 × 7 / 107, rounded half up
        Decimal("279.44"),
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = pdf_text(response.content, tmp_path)
    for expected in (
        "INV-2026-000001",
        "ใบเสร็จรับเงิน",
        "Example Co., Ltd.",
        "0105551234567",
        "สมชาย ใจดี",
        "บริษัท ตัวอย่าง",  # pdftotext splits the sara am of "จำกัด" back into its parts
        "0105559876543",
        "VAT 7% included",
        "Receipt Pack",
        "19.56",
        "279.44",
        "299.00 THB",
    ):
        assert thai_aa(expected) in text, (expected, text)


@pytest.mark.django_db
def test_an_inr_receipt_has_no_thai_vat(tmp_path):
    payment = PaymentFactory(
        package=CreditPackageFactory(price=Decimal("499.00"), currency="INR"), currency="INR"
    )

    payment_complete(payment=payment)

    receipt = Receipt.objects.get(payment=payment)
    assert (receipt.vat_amount, receipt.net_amount, receipt.currency) == (0, Decimal("499.00"), "INR")
    assert "VAT" not in pdf_text(client_for(payment.user).get(receipt_url(payment)).content, tmp_path)


@pytest.mark.django_db
def test_the_receipt_is_the_owners_only(api_client):
    payment = payment_complete(payment=PaymentFactory())
    pending = PaymentFactory()

    assert_error(client_for(UserFactory()).get(receipt_url(payment)), 404, "not_found")
    assert_error(api_client.get(receipt_url(payment)), 401)
    assert_error(client_for(pending.user).get(receipt_url(pending)), 404, "not_found")  # not completed
    assert client_for(payment.user).get(receipt_url(payment) + "/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_completions_take_consecutive_numbers():
    payments = [PaymentFactory() for _ in range(20)]

    def complete(payment):
        try:
            with time_machine.travel(NOW, tick=False):
                return payment_complete(payment=payment).status
        finally:
            connection.close()

    results = run_in_threads(complete, [(p,) for p in payments])

    assert results == ["completed"] * 20, results
    sequences = sorted(Receipt.objects.filter(year=2026).values_list("sequence", flat=True))
    assert sequences == list(range(1, 21))
    assert sorted(Receipt.objects.values_list("number", flat=True)) == [
        f"INV-2026-{n:06d}" for n in range(1, 21)
    ]
    assert ReceiptCounter.objects.get(year=2026).last_number == 20


@pytest.mark.django_db
def test_a_rolled_back_completion_gives_its_number_back():
    from django.db import transaction

    first, second = PaymentFactory(), PaymentFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        payment_complete(payment=first)
        raise RuntimeError("the completing transaction fails after the receipt was issued")

    payment_complete(payment=second)

    assert list(Receipt.objects.values_list("number", flat=True)) == [f"INV-{datetime.now(UTC).year}-000001"]
