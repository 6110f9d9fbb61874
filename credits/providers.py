"""Payment providers behind one small interface.

Each provider starts a checkout for a payment (the payload a frontend needs to take the customer
to the provider), verifies a webhook delivery and parses it into a `ProviderEvent`.

- Stripe and Razorpay go through their official SDKs: a Stripe Checkout Session (its
  `url` is the redirect) or a Razorpay order (its id opens Razorpay's checkout), webhooks verified
  with each provider's own scheme (`Stripe-Signature` via `stripe.Webhook.construct_event`,
  `X-Razorpay-Signature` via `razorpay.Utility.verify_webhook_signature`). Their API keys are
  STRIPE_SECRET_KEY and RAZORPAY_KEY_ID/RAZORPAY_KEY_SECRET; without them the provider refuses
  (400 `provider_unavailable`), and a provider that fails answers 502 `provider_error`.
- PromptPay is an EMVCo merchant-presented QR payload built here (no maintained library fits).
- The others (TrueMoney, PromptPay notifications) sign the generic way (`X-Signature: t=<unix>,v1=<hex>`)
  (`config.signing`).

The webhook secret of provider `p` is `settings.PAYMENT_WEBHOOK_SECRETS[p]`
(PAYMENT_WEBHOOK_SECRET_<P>; for Stripe the endpoint's `whsec_…` secret, for Razorpay the
webhook secret set in its dashboard).
"""

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import razorpay
import requests
import stripe
from django.conf import settings
from rest_framework import status

from config import signing
from config.exceptions import ApplicationError
from config.failures import failure_report
from config.outside_calls import outside_call
from config.parsers import json_loads
from credits.models import Payment, Provider

EVENT_TYPES = ("payment.succeeded", "payment.failed", "payment.refunded")
MAX_ID_LENGTH = 255


class EventError(Exception):
    """The webhook body is not a valid event (→ 400, logged as rejected)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class ProviderUnavailable(ApplicationError):
    """The provider is not configured here (no API keys): choose another one."""

    code = "provider_unavailable"
    status_code = status.HTTP_400_BAD_REQUEST


logger = logging.getLogger(__name__)

PROVIDER_FAILED_MESSAGE = "The payment provider could not start this payment. Please try again later."


class ProviderFailed(ApplicationError):
    """The provider's API refused or could not be reached."""

    code = "provider_error"
    status_code = status.HTTP_502_BAD_GATEWAY


@dataclass(frozen=True)
class ProviderEvent:
    """A provider's event in our terms. `type` is one of EVENT_TYPES, or "" for an event we do not
    act on (acknowledged as `ignored` so the provider stops sending it). The payment is found by
    `payment_id` (ours), else by `gateway_payment_id` (the provider's checkout/order id), else by
    `provider_payment_id` (the provider's payment id, kept from the success notice).

    A refund notice that names the provider's refund (`provider_refund_id`) carries that refund's
    own `amount`; `refund_key` is the key our refund request gave the provider (its metadata or
    notes), so the notice and the API answer of one staff refund are recognised as one refund."""

    event_id: str
    type: str
    payment_id: str
    amount: Decimal
    currency: str
    transaction_id: str = ""
    receipt_url: str = ""
    failure_reason: str = ""
    gateway_payment_id: str = ""
    provider_payment_id: str = ""
    provider_refund_id: str = ""
    refund_key: str = ""


@dataclass(frozen=True)
class ProviderRefund:
    """The provider's answer to a refund request: its refund id and status."""

    refund_id: str
    status: str


class ProviderRefused(ApplicationError):
    """The provider answered and refused the operation (the reason is in the message, for staff)."""

    code = "provider_refused"
    status_code = status.HTTP_409_CONFLICT


class PaymentProvider:
    code: str = ""

    def secret(self) -> str:
        return settings.PAYMENT_WEBHOOK_SECRETS.get(self.code, "")

    def start_checkout(self, payment: Payment) -> dict:
        """What the frontend needs to send the customer to this provider for `payment`."""
        raise NotImplementedError

    def refund(self, payment: Payment, *, amount: Decimal, key: str, reason: str = "") -> ProviderRefund:
        """Ask the provider to send `amount` of `payment` back (its API, through its SDK), once per
        `key`. Raises ProviderRefused (409, with the provider's reason) when it says no,
        ProviderFailed (502) when it cannot be reached, ProviderUnavailable (400) when this
        provider has no refund API here (PromptPay, TrueMoney: finance staff refund by hand)."""
        message = f"{self.code} has no refund API: refund the money by hand and record it."
        raise ProviderUnavailable(message, fields={"provider": [message]})

    def verify_webhook(self, headers: dict, body: bytes, *, now: int | None = None) -> None:
        """Raise `config.signing.SignatureError` unless the delivery is signed by this provider
        (`headers` have lower-case names). The generic scheme: a fresh `X-Signature`."""
        signing.verify(
            headers.get("x-signature"),
            body,
            self.secret(),
            tolerance=settings.WEBHOOK_TOLERANCE_SECONDS,
            now=now,
        )

    def signature_header(self, headers: dict, name: str, label: str) -> str:
        """The provider's own signature header `name` (lower-case) for the SDK to check; raises
        SignatureError when no secret is configured or the header is missing."""
        if not self.secret():
            raise signing.SignatureError(
                "webhook_not_configured", "No secret is configured for this provider."
            )
        header = headers.get(name)
        if not header:
            raise signing.SignatureError("missing_signature", f"The {label} header is missing.")
        return header

    def parse_event(self, body: bytes) -> ProviderEvent:
        """The event in a (signature-checked) body; raises EventError when it is not one."""
        try:
            # Decimal for amounts: money never passes through a float.
            data = json_loads(body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
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


def _report(payment, operation: str, step: str, error_code: str) -> None:
    """A provider refused or failed a payment's checkout: one occurrence in the error log."""
    failure_report(
        category="payment",
        operation=operation,
        step=step,
        error_code=str(error_code)[:64],
        message=f"{operation} failed at {step}",
        severity="high",
        user_id=payment.user_id,
        payment_id=payment.pk,
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


def _json_object(body: bytes) -> dict:
    try:
        data = json_loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise EventError("parse_error", "The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise EventError("validation_error", "The body must be a JSON object.")
    return data


def _get(data, *path):
    """data[path[0]][path[1]]…, or None where anything on the way is missing or not an object."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _from_minor(value) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 10**12:
        return None
    return (Decimal(value) / 100).quantize(Decimal("0.01"))


def _provider_event(event_id, type_, *, payment_id, amount, currency, **extra) -> ProviderEvent:
    """A ProviderEvent from an SDK provider's fields, checked like the generic ones."""
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > MAX_ID_LENGTH:
        raise EventError("validation_error", "Invalid event: the event has no usable id.")
    if type_ and (amount is None or not isinstance(currency, str) or not currency.strip()):
        raise EventError("validation_error", "Invalid event: amount and currency are required.")
    return ProviderEvent(
        event_id=event_id.strip(),
        type=type_,
        payment_id=_text(payment_id),
        amount=amount if amount is not None else Decimal("0.00"),
        currency=_text(currency).strip().upper()[:3] if isinstance(currency, str) else "",
        **{k: _text(v, 500) for k, v in extra.items()},
    )


class StripeProvider(PaymentProvider):
    """Stripe Checkout through the official SDK (requests as its HTTP client)."""

    code = Provider.STRIPE

    def client(self) -> stripe.StripeClient:
        if not settings.STRIPE_SECRET_KEY:
            message = "Stripe is not configured on this server."
            raise ProviderUnavailable(message, fields={"provider": [message]})
        return stripe.StripeClient(
            settings.STRIPE_SECRET_KEY,
            base_addresses={"api": settings.STRIPE_API_BASE},
            http_client=stripe.RequestsClient(timeout=settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS),
            max_network_retries=0,
        )

    def start_checkout(self, payment):
        client = self.client()
        reference = str(payment.id)
        name = payment.title
        try:
            with outside_call(self.code, "checkout.sessions.create") as call:
                session = client.v1.checkout.sessions.create(
                    params={
                        "mode": "payment",
                        "client_reference_id": reference,
                        "metadata": {"payment_id": reference},
                        "payment_intent_data": {"metadata": {"payment_id": reference}},
                        "line_items": [
                            {
                                "quantity": 1,
                                "price_data": {
                                    "currency": payment.currency.lower(),
                                    "unit_amount": _minor_units(payment.amount),
                                    "product_data": {"name": name},
                                },
                            }
                        ],
                        "success_url": f"{settings.FRONTEND_URL}/payments/{reference}?status=success",
                        "cancel_url": f"{settings.FRONTEND_URL}/payments/{reference}?status=cancelled",
                    },
                    # Stripe's own idempotency: a retried create returns the same session.
                    options={"idempotency_key": f"checkout:{reference}"},
                )
                call.status_code = 200
        except stripe.StripeError as exc:
            _report(payment, "stripe.checkout", "checkout.sessions.create", exc.code or type(exc).__name__)
            # The provider's words (hosts, request ids, its body) go to the log, not to the caller.
            logger.warning("stripe checkout failed: %s", exc)
            raise ProviderFailed(PROVIDER_FAILED_MESSAGE) from None
        return {
            "type": "redirect",
            "url": session.url,
            "checkout_session_id": session.id,
            "amount": _minor_units(payment.amount),
            "currency": payment.currency.lower(),
            "client_reference_id": reference,
        }

    def refund(self, payment, *, amount, key, reason=""):
        client = self.client()
        try:
            with outside_call(self.code, "refunds.create") as call:
                refund = client.v1.refunds.create(
                    params={
                        "payment_intent": payment.provider_payment_id,
                        "amount": _minor_units(amount),
                        "reason": "requested_by_customer",
                        "metadata": {"payment_id": str(payment.id), "refund_key": key},
                    },
                    # Stripe's own idempotency: the same request retried is the same refund.
                    options={"idempotency_key": f"refund:{key}"},
                )
                call.status_code = 200
        except (stripe.InvalidRequestError, stripe.CardError) as exc:
            raise ProviderRefused(f"Stripe refused the refund: {exc.user_message or exc}") from None
        except stripe.StripeError as exc:
            _report(payment, "stripe.refund", "refunds.create", exc.code or type(exc).__name__)
            # What went wrong is in the error log; the message names no host, path or provider body.
            raise ProviderFailed("Stripe could not take the refund; try again later.") from None
        if refund.status in ("failed", "canceled"):
            why = refund.get("failure_reason") or refund.status
            raise ProviderRefused(f"Stripe refused the refund: {why}.")
        return ProviderRefund(refund_id=refund.id, status=refund.status)

    def verify_webhook(self, headers, body, *, now=None):
        header = self.signature_header(headers, "stripe-signature", "Stripe-Signature")
        try:
            payload = body.decode("utf-8")
        except UnicodeDecodeError:
            raise signing.SignatureError("invalid_signature", "A Stripe event is UTF-8 JSON.") from None
        try:
            stripe.Webhook.construct_event(
                payload, header, self.secret(), tolerance=settings.WEBHOOK_TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError as exc:
            raise signing.SignatureError(
                "invalid_signature", f"Stripe signature: {exc.user_message or exc}"
            ) from None
        except (ValueError, TypeError, AttributeError, KeyError):
            # construct_event checks the signature before it parses: the body is signed but is no
            # event; the receiver's own parsing answers 400.
            pass

    def parse_event(self, body):
        data = _json_object(body)
        kind, obj = data.get("type"), _get(data, "data", "object")
        if not isinstance(obj, dict):
            raise EventError("validation_error", "Invalid event: data.object is missing.")
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        payment_id = obj.get("client_reference_id") or metadata.get("payment_id") or ""
        ours = {
            "checkout.session.async_payment_succeeded": "payment.succeeded",
            "checkout.session.async_payment_failed": "payment.failed",
            "checkout.session.expired": "payment.failed",
        }
        common = {"payment_id": payment_id, "currency": obj.get("currency")}
        if kind in ("refund.created", "refund.updated") and obj.get("object") == "refund":
            # One refund, named by its id, with its own amount: applied once whichever of this
            # notice and our API call's answer comes first. A failed or cancelled one moves nothing.
            applied = obj.get("status") in ("succeeded", "pending")
            return _provider_event(
                data.get("id"),
                "payment.refunded" if applied else "",
                amount=_from_minor(obj.get("amount")),
                provider_payment_id=obj.get("payment_intent") or "",
                provider_refund_id=obj.get("id") or "",
                refund_key=metadata.get("refund_key") or "",
                **common,
            )
        if kind == "checkout.session.completed":
            # Card payments are paid on completion; delayed methods report later (async_*).
            type_ = "payment.succeeded" if obj.get("payment_status") == "paid" else ""
            return _provider_event(
                data.get("id"),
                type_,
                amount=_from_minor(obj.get("amount_total")),
                transaction_id=obj.get("payment_intent") or "",
                gateway_payment_id=obj.get("id") or "",
                provider_payment_id=obj.get("payment_intent") or "",
                **common,
            )
        if kind in ours:
            return _provider_event(
                data.get("id"),
                ours[kind],
                amount=_from_minor(obj.get("amount_total")),
                transaction_id=obj.get("payment_intent") or "",
                failure_reason="Checkout expired."
                if kind.endswith("expired")
                else "Payment failed at Stripe.",
                gateway_payment_id=obj.get("id") or "",
                provider_payment_id=obj.get("payment_intent") or "",
                **common,
            )
        if kind == "charge.refunded":
            # A charge refunded in full (from Stripe's dashboard too): what is left goes back.
            # Partial refunds are applied from their own `refund.*` notices.
            full = obj.get("refunded") is True
            return _provider_event(
                data.get("id"),
                "payment.refunded" if full else "",
                amount=_from_minor(obj.get("amount")),
                provider_payment_id=obj.get("payment_intent") or "",
                **common,
            )
        return _provider_event(data.get("id"), "", amount=None, **common)


class RazorpayProvider(PaymentProvider):
    """Razorpay orders through the official SDK (requests underneath)."""

    code = Provider.RAZORPAY

    def client(self) -> razorpay.Client:
        if not (settings.RAZORPAY_KEY_ID and settings.RAZORPAY_KEY_SECRET):
            message = "Razorpay is not configured on this server."
            raise ProviderUnavailable(message, fields={"provider": [message]})
        return razorpay.Client(
            auth=(settings.RAZORPAY_KEY_ID, settings.RAZORPAY_KEY_SECRET), base_url=settings.RAZORPAY_API_BASE
        )

    def start_checkout(self, payment):
        client = self.client()
        reference = str(payment.id)
        try:
            with outside_call(self.code, "orders.create") as call:
                order = client.order.create(
                    data={
                        "amount": _minor_units(payment.amount),
                        "currency": payment.currency,
                        "receipt": reference,
                        "notes": {"payment_id": reference},
                    },
                    timeout=settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS,
                )
                call.status_code = 200
        except (
            razorpay.errors.BadRequestError,
            razorpay.errors.ServerError,
            razorpay.errors.GatewayError,
        ) as exc:
            _report(payment, "razorpay.checkout", "orders.create", type(exc).__name__)
            logger.warning("razorpay order failed: %s", exc)
            raise ProviderFailed(PROVIDER_FAILED_MESSAGE) from None
        except (requests.RequestException, ValueError) as exc:
            _report(payment, "razorpay.checkout", "orders.create", type(exc).__name__)
            logger.warning("razorpay unreachable or unreadable: %s", exc)
            raise ProviderFailed(PROVIDER_FAILED_MESSAGE) from None
        if not isinstance(order, dict) or not isinstance(order.get("id"), str):
            logger.warning("razorpay answered without an order id")
            raise ProviderFailed(PROVIDER_FAILED_MESSAGE)
        return {
            "type": "sdk",
            "order_id": order["id"],
            "amount": _minor_units(payment.amount),
            "currency": payment.currency,
            "receipt": reference,
            "key_id": settings.RAZORPAY_KEY_ID,
        }

    def refund(self, payment, *, amount, key, reason=""):
        client = self.client()
        try:
            with outside_call(self.code, "payments.refund") as call:
                refund = client.payment.refund(
                    payment.provider_payment_id,
                    {
                        "amount": _minor_units(amount),
                        "speed": "normal",
                        "receipt": key[:40],
                        "notes": {"payment_id": str(payment.id), "refund_key": key},
                    },
                    timeout=settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS,
                )
                call.status_code = 200
        except razorpay.errors.BadRequestError as exc:
            raise ProviderRefused(f"Razorpay refused the refund: {exc}") from None
        except (razorpay.errors.ServerError, razorpay.errors.GatewayError) as exc:
            _report(payment, "razorpay.refund", "payments.refund", type(exc).__name__)
            raise ProviderFailed("Razorpay could not take the refund; try again later.") from None
        except (requests.RequestException, ValueError) as exc:
            _report(payment, "razorpay.refund", "payments.refund", type(exc).__name__)
            raise ProviderFailed("Razorpay could not be reached or answered nonsense.") from None
        if not isinstance(refund, dict) or not isinstance(refund.get("id"), str):
            raise ProviderFailed("Razorpay answered without a refund id.")
        if refund.get("status") == "failed":
            raise ProviderRefused("Razorpay refused the refund (status failed).")
        return ProviderRefund(refund_id=refund["id"], status=str(refund.get("status") or ""))

    def verify_webhook(self, headers, body, *, now=None):
        header = self.signature_header(headers, "x-razorpay-signature", "X-Razorpay-Signature")
        try:
            razorpay.Utility().verify_webhook_signature(body.decode("utf-8"), header, self.secret())
        except (razorpay.errors.SignatureVerificationError, UnicodeDecodeError, TypeError):
            raise signing.SignatureError(
                "invalid_signature", "The Razorpay signature does not match."
            ) from None

    def parse_event(self, body):
        # Razorpay's body has no event id (it is in a header): an event is identified by its type
        # and entity, so a redelivery of the same event is the same id.
        data = _json_object(body)
        kind = data.get("event")
        refund = _get(data, "payload", "refund", "entity")
        if kind in ("refund.created", "refund.processed") and isinstance(refund, dict):
            return self._refund_event(kind, refund, _get(data, "payload", "payment", "entity"))
        entity = _get(data, "payload", "payment", "entity")
        if not isinstance(kind, str) or not isinstance(entity, dict) or not isinstance(entity.get("id"), str):
            raise EventError(
                "validation_error", "Invalid event: event and payload.payment.entity are required."
            )
        notes = entity.get("notes") if isinstance(entity.get("notes"), dict) else {}
        type_ = {
            "payment.captured": "payment.succeeded",
            "order.paid": "payment.succeeded",
            "payment.failed": "payment.failed",
        }.get(kind, "")
        if kind == "refund.processed" and entity.get("amount_refunded") == entity.get("amount"):
            type_ = "payment.refunded"
        return _provider_event(
            f"{kind}:{entity['id']}"[:MAX_ID_LENGTH],
            type_,
            payment_id=notes.get("payment_id") or "",
            amount=_from_minor(entity.get("amount")),
            currency=entity.get("currency"),
            transaction_id=entity["id"],
            failure_reason=entity.get("error_description") or "",
            gateway_payment_id=entity.get("order_id") or "",
            provider_payment_id=entity["id"],
        )

    def _refund_event(self, kind: str, refund: dict, payment_entity) -> ProviderEvent:
        """A `refund.*` event: one refund (its own id and amount), applied once whichever of this
        notice and our API call's answer comes first. Razorpay sends `refund.created` and then
        `refund.processed` for one refund: both name it, so the second changes nothing."""
        if not isinstance(refund.get("id"), str):
            raise EventError("validation_error", "Invalid event: payload.refund.entity has no id.")
        notes = refund.get("notes") if isinstance(refund.get("notes"), dict) else {}
        payment_notes = (
            payment_entity.get("notes")
            if isinstance(payment_entity, dict) and isinstance(payment_entity.get("notes"), dict)
            else {}
        )
        applied = refund.get("status") in ("processed", "pending", "created", None)
        return _provider_event(
            f"{kind}:{refund['id']}"[:MAX_ID_LENGTH],
            "payment.refunded" if applied else "",
            payment_id=notes.get("payment_id") or payment_notes.get("payment_id") or "",
            amount=_from_minor(refund.get("amount")),
            currency=refund.get("currency"),
            provider_payment_id=refund.get("payment_id") or "",
            provider_refund_id=refund["id"],
            refund_key=notes.get("refund_key") or "",
        )


class PromptPayProvider(PaymentProvider):
    code = Provider.PROMPTPAY

    def start_checkout(self, payment):
        reference = f"pp{payment.id.hex[:23]}"
        try:
            qr_payload = promptpay_payload(
                target=settings.PROMPTPAY_MERCHANT_ID, amount=payment.amount, reference=reference
            )
        except ValueError:
            message = "PromptPay is not configured on this server (PROMPTPAY_MERCHANT_ID)."
            raise ProviderUnavailable(message, fields={"provider": [message]}) from None
        return {
            "type": "qr",
            "reference": reference,
            "amount": str(payment.amount),
            "currency": payment.currency,
            "qr_payload": qr_payload,
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


class BankTransferProvider(PaymentProvider):
    """A transfer to the account in BANK_TRANSFER_DETAILS with our reference; finance staff
    confirm it by hand when it shows on the statement (no notice is trusted)."""

    code = Provider.BANK_TRANSFER

    def start_checkout(self, payment):
        if not settings.BANK_TRANSFER_DETAILS:
            message = "Bank transfer is not configured on this server (BANK_TRANSFER_DETAILS)."
            raise ProviderUnavailable(message, fields={"provider": [message]})
        return {
            "type": "bank_transfer",
            "reference": f"BT{payment.id.hex[:12].upper()}",
            "account": settings.BANK_TRANSFER_DETAILS,
            "amount": str(payment.amount),
            "currency": payment.currency,
        }


class FreeProvider(PaymentProvider):
    code = Provider.FREE

    def start_checkout(self, payment):
        return {"type": "none"}


PROVIDERS: dict[str, PaymentProvider] = {
    p.code: p
    for p in (
        StripeProvider(),
        PromptPayProvider(),
        TrueMoneyProvider(),
        RazorpayProvider(),
        BankTransferProvider(),
        FreeProvider(),
    )
}


def provider_get(code: str) -> PaymentProvider | None:
    return PROVIDERS.get(code) if isinstance(code, str) else None


PROMPTPAY_AID = "A000000677010111"  # the PromptPay application id (Thai QR Payment standard)


def promptpay_payload(*, target: str, amount: Decimal | None = None, reference: str = "") -> str:
    """An EMVCo merchant-presented QR string for a PromptPay credit transfer (Thai QR Payment).

    `target` is a PromptPay id: a mobile number (10 digits starting with 0, or +66…; sent as
    0066 and the 9 digits), a national or tax id (13 digits) or an e-wallet id (15 digits).
    With an amount the QR is dynamic (point of initiation 12) and carries it; our reference goes
    in the additional data field (62, reference label 05). The last field is the CRC-16/CCITT-FALSE
    of everything before it, including its own tag and length ("6304").
    """
    digits = "".join(ch for ch in target if ch.isdigit())
    if len(digits) == 15:
        account = _tlv("03", digits)
    elif len(digits) == 13:
        account = _tlv("02", digits)
    elif len(digits) in (10, 11) and (digits.startswith("0") or digits.startswith("66")):
        account = _tlv("01", ("0066" + digits[-9:]))
    else:
        raise ValueError("A PromptPay id is a phone number, a 13-digit id or a 15-digit e-wallet id.")
    body = (
        _tlv("00", "01")
        + _tlv("01", "12" if amount is not None else "11")
        + _tlv("29", _tlv("00", PROMPTPAY_AID) + account)
        + _tlv("58", "TH")
        + _tlv("53", "764")
        + (_tlv("54", f"{amount:.2f}") if amount is not None else "")
        + (_tlv("62", _tlv("05", reference[:25])) if reference else "")
        + "6304"
    )
    return body + f"{_crc16(body.encode('ascii')):04X}"


def _tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def _crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, initial 0xFFFF, no reflection, no final xor."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc
