import pytest
from django.core.management import call_command

from credits.selectors import balance_get
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_seed_demo_credits_without_demo_user_does_nothing():
    call_command("seed_demo_credits")


def test_seed_demo_credits_grants_once_through_the_ledger():
    demo = UserFactory(email="demo@example.com")

    call_command("seed_demo_credits")
    call_command("seed_demo_credits")

    assert balance_get(user=demo) == 50
    assert demo.credit_transactions.get().type == "bonus"
