"""Issue 19 §6: a URL the API does not have is null, never "" (the schema says `format: uri`,
which "" is not)."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.conftest import client_for
from tests.credits.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def test_a_payment_without_a_receipt_url_shows_null():
    payment = PaymentFactory(receipt_url="")

    body = client_for(payment.user).get(f"/api/credits/payments/{payment.pk}").json()

    assert body["receipt_url"] is None


def test_a_payment_with_a_receipt_url_shows_it():
    payment = PaymentFactory(receipt_url="https://pay.example.com/r/1")

    body = client_for(payment.user).get(f"/api/credits/payments/{payment.pk}").json()

    assert body["receipt_url"] == "https://pay.example.com/r/1"


def test_every_uri_field_of_the_schema_is_nullable():
    # A URI that can be absent must be declared nullable; one that cannot is never "" either.
    schema = SchemaGenerator().get_schema(request=None, public=True)
    not_nullable = [
        f"{name}.{field}"
        for name, component in schema["components"]["schemas"].items()
        for field, spec in (component.get("properties") or {}).items()
        if spec.get("format") == "uri" and not spec.get("nullable")
    ]

    assert not_nullable == []
