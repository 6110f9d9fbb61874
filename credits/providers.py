"""Payment providers behind one small interface.

Each provider can start a checkout (returning the payload a frontend needs to take the
customer to the provider; no outbound network call is made here), verify a webhook signature
and parse a webhook event into a `ProviderEvent`. Every provider signs its webhooks the same
way (SPEC §4, `config.signing`); the secret of provider `p` is
`settings.PAYMENT_WEBHOOK_SECRETS[p]` (from PAYMENT_WEBHOOK_SECRET_<P>).
"""

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings

from config import signing
from credits.models import Payment, Provider

EVENT_TYPES = ("payment.succeeded", "payment.failed", "payment.refunded")
MAX_ID_LENGTH = 255


class EventError(Exception):
    """The webhook body is not a valid event (→ 400, logged as rejected)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ProviderEvent:
    event_id: str
    type: str
    payment_id: str
    amount: Decimal
    currency: str
    transaction_id: str = ""
    receipt_url: str = ""
    failure_reason: str = ""


class PaymentProvider:
    code: str = ""

    def secret(self) -> str:
        return settings.PAYMENT_WEBHOOK_SECRETS.get(self.code, "")

    def start_checkout(self, payment: Payment) -> dict:
        """What the frontend needs to send the customer to this provider for `payment`."""
        raise NotImplementedError

    def verify_signature(self, header: str | None, body: bytes, *, now: int | None = None) -> None:
        """Raise `config.signing.SignatureError` unless `header` signs `body` freshly."""
        signing.verify(header, body, self.secret(), tolerance=settings.WEBHOOK_TOLERANCE_SECONDS, now=now)

    def parse_event(self, body: bytes) -> ProviderEvent:
        """The event in a (signature-checked) body; raises EventError when it is not one."""
        try:
            # Decimal for amounts: money never passes through a float.
            data = json.loads(body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise EventError("parse_error", "The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise EventError("validation_error", "The body must be a JSON object.")
        fields = {}
        for name in ("event_id", "type", "payment_id", "currency"):
            value = data.get(name)
            if (
                not isinstance(value, str)
                or not value.strip()
                or len(value) > MAX_ID_LENGTH
                or not value.isprintable()
            ):
                fields[name] = "must be a non-empty string"
        if not fields and data["type"] not in EVENT_TYPES:
            fields["type"] = f"must be one of {', '.join(EVENT_TYPES)}"
        amount = _decimal(data.get("amount"))
        if amount is None:
            fields["amount"] = "must be a non-negative decimal with at most 2 places"
        if fields:
            problems = "; ".join(f"{k} {v}" for k, v in fields.items())
            raise EventError("validation_error", f"Invalid event: {problems}")
        return ProviderEvent(
            event_id=data["event_id"].strip(),
            type=data["type"],
            payment_id=data["payment_id"].strip(),
            amount=amount,
            currency=data["currency"].strip().upper(),
            transaction_id=_text(data.get("transaction_id")),
            receipt_url=_text(data.get("receipt_url"), 500),
            failure_reason=_text(data.get("failure_reason"), 500),
        )


def _decimal(value) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    # The range check comes first: quantize() of a huge exponent would itself raise.
    if not amount.is_finite() or amount < 0 or amount > 10**10 or amount != amount.quantize(Decimal("0.01")):
        return None
    return amount.quantize(Decimal("0.01"))


def _text(value, limit: int = MAX_ID_LENGTH) -> str:
    return value[:limit].replace("\x00", "") if isinstance(value, str) else ""


def _minor_units(amount: Decimal) -> int:
    return int(amount * 100)


class StripeProvider(PaymentProvider):
    code = Provider.STRIPE

    def start_checkout(self, payment):
        return {
            "type": "redirect",
            "checkout_session_id": f"cs_{payment.id.hex}",
            "amount": _minor_units(payment.amount),
            "currency": payment.currency.lower(),
            "client_reference_id": str(payment.id),
        }


class PromptPayProvider(PaymentProvider):
    code = Provider.PROMPTPAY

    def start_checkout(self, payment):
        return {
            "type": "qr",
            "reference": f"pp_{payment.id.hex[:20]}",
            "amount": str(payment.amount),
            "currency": payment.currency,
            "qr_payload": promptpay_payload(payment.amount, payment.id.hex[:20]),
        }


class TrueMoneyProvider(PaymentProvider):
    code = Provider.TRUEMONEY

    def start_checkout(self, payment):
        return {
            "type": "deeplink",
            "reference": f"tmn_{payment.id.hex}",
            "deeplink": f"ascendmoney://wallet.truemoney.co.th/app/payment?ref=tmn_{payment.id.hex}",
            "amount": str(payment.amount),
            "currency": payment.currency,
        }


class RazorpayProvider(PaymentProvider):
    code = Provider.RAZORPAY

    def start_checkout(self, payment):
        return {
            "type": "sdk",
            "order_id": f"order_{payment.id.hex[:14]}",
            "amount": _minor_units(payment.amount),
            "currency": payment.currency,
            "receipt": str(payment.id),
            "key_id": settings.RAZORPAY_KEY_ID,
        }


class FreeProvider(PaymentProvider):
    code = Provider.FREE

    def start_checkout(self, payment):
        return {"type": "none"}


PROVIDERS: dict[str, PaymentProvider] = {
    p.code: p
    for p in (StripeProvider(), PromptPayProvider(), TrueMoneyProvider(), RazorpayProvider(), FreeProvider())
}


def provider_get(code: str) -> PaymentProvider | None:
    return PROVIDERS.get(code) if isinstance(code, str) else None


def promptpay_payload(amount: Decimal, reference: str) -> str:
    """An EMVCo merchant-presented QR string (Thai QR) carrying the amount and our reference.

    The merchant id comes from PROMPTPAY_MERCHANT_ID; the frontend renders it as a QR code.
    """
    merchant = settings.PROMPTPAY_MERCHANT_ID

    def tlv(tag: str, value: str) -> str:
        return f"{tag}{len(value):02d}{value}"

    body = (
        tlv("00", "01")
        + tlv("01", "12")
        + tlv("29", tlv("00", "A000000677010111") + tlv("02", merchant[:13]))
        + tlv("53", "764")
        + tlv("54", f"{amount:.2f}")
        + tlv("58", "TH")
        + tlv("62", tlv("05", reference[:25]))
        + "6304"
    )
    return body + f"{_crc16(body.encode()):04X}"


def _crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc
