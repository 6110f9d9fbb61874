import pytest
from django.core.management import call_command

from credits.models import CreditTransaction, Payment
from credits.selectors import balance_get
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_seed_demo_credits_without_demo_user_does_nothing():
    bystander = UserFactory(email="someone@example.com")

    call_command("seed_demo_credits")

    assert not CreditTransaction.objects.exists() and not Payment.objects.exists()
    assert balance_get(user=bystander) == 0


def test_seed_demo_credits_grants_once_through_the_ledger():
    demo = UserFactory(email="demo@example.com")

    call_command("seed_demo_credits")
    call_command("seed_demo_credits")

    # 50 welcome credits and the demo's completed Popular Pack (10); the failed and the pending
    # purchase granted nothing
    assert balance_get(user=demo) == 50 + 10
    assert sorted(demo.credit_transactions.values_list("type", "amount")) == [("bonus", 50), ("purchase", 10)]
    assert sorted(demo.payments.values_list("status", flat=True)) == ["completed", "failed", "pending"]
