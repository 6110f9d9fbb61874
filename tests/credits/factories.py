from decimal import Decimal

import factory

from credits.models import CreditPackage, Payment
from tests.factories import UserFactory


class CreditPackageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CreditPackage

    name = factory.Sequence(lambda n: f"Test Pack {n}")
    credits = 10
    price = Decimal("299.00")
    currency = "THB"


class PaymentFactory(factory.django.DjangoModelFactory):
    """A pending payment as purchase_start would leave it (no credits granted yet)."""

    class Meta:
        model = Payment

    user = factory.SubFactory(UserFactory)
    package = factory.SubFactory(CreditPackageFactory)
    credits = factory.LazyAttribute(lambda p: p.package.credits)
    amount = factory.LazyAttribute(lambda p: p.package.price)
    currency = factory.LazyAttribute(lambda p: p.package.currency)
    provider = "truemoney"
    status = Payment.Status.PENDING
