"""Receipts / tax invoices: one per completed paid payment, numbered gap-free per year.

`receipt_issue` runs inside the payment's completing transaction (`payment_transition`): it
locks the year's ReceiptCounter row FOR UPDATE, takes the next number and writes the Receipt, so
a rolled-back completion gives its number back and concurrent completions queue on that one row
(the lock order: payment row → balance or subscription rows → the counter row). The PDF is drawn
from the stored Receipt by WeasyPrint with Debian's Thai and Latin fonts, whenever it is asked for.
"""

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.template.loader import render_to_string

from credits.models import CURRENCY_THB, Payment, Receipt, ReceiptCounter

CENT = Decimal("0.01")


def vat_included(*, amount: Decimal, currency: str) -> tuple[Decimal, Decimal]:
    """(VAT rate in percent, VAT amount) included in `amount`: THB prices include VAT_RATE_THB %;
    other currencies carry none here."""
    if currency.upper() != CURRENCY_THB:
        return Decimal("0.00"), Decimal("0.00")
    rate = Decimal(settings.VAT_RATE_THB)
    vat = (amount * rate / (100 + rate)).quantize(CENT, rounding=ROUND_HALF_UP)
    return rate.quantize(CENT), vat


def receipt_issue(*, payment: Payment, now: datetime) -> Receipt | None:
    """Issue the receipt of `payment`, just completed (call inside its transaction, the payment
    row locked). Free payments get none. Locks the year's counter row until the transaction ends;
    the number is `INV-<year>-<6 digits>`, consecutive within the year."""
    if payment.amount <= 0:
        return None
    year = now.year
    ReceiptCounter.objects.bulk_create([ReceiptCounter(year=year)], ignore_conflicts=True)
    counter = ReceiptCounter.objects.select_for_update().get(year=year)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    user = payment.user
    rate, vat = vat_included(amount=payment.amount, currency=payment.currency)
    what = payment.description
    return Receipt.objects.create(
        payment=payment,
        number=f"INV-{year}-{counter.last_number:06d}",
        year=year,
        sequence=counter.last_number,
        issued_at=now,
        seller={
            "name": settings.RECEIPT_SELLER_NAME,
            "address": settings.RECEIPT_SELLER_ADDRESS,
            "tax_id": settings.RECEIPT_SELLER_TAX_ID,
        },
        buyer={
            "name": user.name,
            "email": user.email,
            "organization": user.organization,
            "address": user.billing_address,
            "country": user.country,
            "tax_id": user.tax_id,
        },
        description=what[:255],
        amount=payment.amount,
        currency=payment.currency,
        vat_rate=rate,
        vat_amount=vat,
        net_amount=payment.amount - vat,
    )


def receipt_pdf(*, receipt: Receipt) -> bytes:
    """The receipt / tax invoice as a PDF (WeasyPrint; Thai and Latin text)."""
    from weasyprint import HTML  # imported on use: it loads Pango, which only this needs

    html = render_to_string("receipts/receipt.html", {"receipt": receipt, "payment": receipt.payment})
    return HTML(string=html).write_pdf()
