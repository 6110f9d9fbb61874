import pytest

from config.exceptions import InvalidTransition
from credits.models import CreditTransaction, Payment
from credits.selectors import balance_get
from credits.services import (
    credits_charge,
    payment_complete,
    payment_fail,
    payment_refund,
    purchase_start,
)
from tests.credits.conftest import run_in_threads
from tests.credits.factories import CreditPackageFactory, PaymentFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_complete_twice_grants_once(user):
    payment = PaymentFactory(user=user)

    payment_complete(payment=payment, transaction_id="t1")
    again = payment_complete(payment=payment, transaction_id="t2")

    assert again.status == "completed" and again.transaction_id == "t1"
    assert balance_get(user=user) == 10
    assert CreditTransaction.objects.get(user=user).idempotency_key == f"payment:{payment.id}:purchase"


def test_completion_grants_the_credits_snapshotted_at_purchase(user):
    package = CreditPackageFactory(credits=10)
    payment = purchase_start(user=user, package=package, provider="truemoney")
    package.credits = 99
    package.save()

    payment_complete(payment=payment)

    assert balance_get(user=user) == 10


def test_a_failed_payment_can_still_complete_later(user):
    payment = PaymentFactory(user=user)
    payment_fail(payment=payment, reason="3DS timeout")

    payment = payment_complete(payment=payment)

    assert payment.status == "completed" and payment.failure_reason == "" and balance_get(user=user) == 10


@pytest.mark.parametrize("status", ["refunded", "cancelled"])
def test_refunded_or_cancelled_payment_cannot_complete(user, status):
    payment = PaymentFactory(user=user, status=status)
    with pytest.raises(InvalidTransition):
        payment_complete(payment=payment)
    assert balance_get(user=user) == 0


def test_completed_payment_cannot_fail(user):
    payment = PaymentFactory(user=user)
    payment_complete(payment=payment)
    with pytest.raises(InvalidTransition):
        payment_fail(payment=payment)


def test_free_payment_cannot_be_refunded(user):
    package = CreditPackageFactory(price=0, credits=1)
    payment = purchase_start(user=user, package=package)
    with pytest.raises(InvalidTransition):
        payment_refund(payment=payment)
    assert balance_get(user=user) == 1


def test_refund_records_who_did_it_on_the_clawback_row(user):
    staff = UserFactory(is_staff=True)
    payment = PaymentFactory(user=user)
    payment_complete(payment=payment)

    payment_refund(payment=payment, created_by=staff, reason="customer request")

    row = CreditTransaction.objects.get(type="adjustment")
    assert row.created_by == staff and row.reason == "customer request" and row.amount == -10


def test_refund_with_partly_spent_credits_claws_back_the_rest(user, ledger_sum):
    payment = PaymentFactory(user=user)
    payment_complete(payment=payment)
    credits_charge(user=user, amount=4, idempotency_key="c")

    payment = payment_refund(payment=payment)

    assert (payment.credits_clawed_back, payment.refund_shortfall) == (6, 4)
    assert balance_get(user=user) == 0 == ledger_sum(user)


@pytest.mark.django_db(transaction=True)
def test_concurrent_completions_and_refunds_of_one_payment_stay_consistent(ledger_sum):
    user = UserFactory()
    payment = PaymentFactory(user=user)

    def act(kind):
        if kind == "complete":
            return payment_complete(payment=payment).status
        return payment_refund(payment=payment).status

    results = run_in_threads(act, [("complete",), ("refund",)] * 5)

    payment.refresh_from_db()
    assert payment.status == "refunded"
    assert all(isinstance(r, str | InvalidTransition) for r in results), results
    assert balance_get(user=user) == ledger_sum(user) == 0
    assert Payment.objects.get(pk=payment.pk).credits_clawed_back in (0, 10)
