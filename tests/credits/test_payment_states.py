"""The payment state machine: one table (credits/states.py), one writer (`payment_transition`),
held by a trigger; refunds are PaymentRefund rows with unique keys."""

import importlib
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.db import DatabaseError, transaction

from config.exceptions import InvalidTransition
from credits.models import CreditTransaction, Payment, PaymentRefund
from credits.selectors import balance_get
from credits.services import (
    RefundRequest,
    balance_lock,
    credits_charge,
    credits_grant,
    payment_complete,
    payment_refund,
    payment_transition,
)
from credits.states import PAYMENT_TRANSITIONS
from tests.credits.conftest import run_in_threads
from tests.credits.factories import PaymentFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

S = Payment.Status
ALLOWED = [(a, b) for a, targets in PAYMENT_TRANSITIONS.items() for b in sorted(targets)]
REFUSED = [
    (a, b) for a in PAYMENT_TRANSITIONS for b in PAYMENT_TRANSITIONS if b not in PAYMENT_TRANSITIONS[a]
]


def _move(payment, to):
    refund = None
    if to == S.REFUNDED:
        refund = RefundRequest(
            amount=payment.amount - payment.refunded_amount, idempotency_key=f"t:{payment.pk}"
        )
    return payment_transition(payment=payment, to=to, refund=refund)


@pytest.mark.parametrize(("start", "to"), ALLOWED)
def test_every_move_in_the_table_is_allowed(user, start, to):
    payment = PaymentFactory(user=user, status=start)

    moved = _move(payment, to)

    assert moved.status == to == Payment.objects.get(pk=payment.pk).status


@pytest.mark.parametrize(("start", "to"), REFUSED)
def test_every_move_outside_the_table_is_a_409_and_changes_nothing(user, start, to):
    payment = PaymentFactory(user=user, status=start)

    with pytest.raises(InvalidTransition) as caught:
        _move(payment, to)

    assert (caught.value.status_code, caught.value.code) == (409, "invalid_transition")
    assert Payment.objects.get(pk=payment.pk).status == start
    assert not CreditTransaction.objects.filter(user=user).exists()


def test_completing_grants_the_credits_in_the_transition(user):
    payment = PaymentFactory(user=user)

    payment_transition(payment=payment, to=S.COMPLETED, transaction_id="tx-1")

    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.status, stored.transaction_id, balance_get(user=user)) == ("completed", "tx-1", 10)
    assert stored.completed_at is not None


def test_a_bare_update_of_the_status_is_refused_by_the_database(user):
    payment = PaymentFactory(user=user)

    with pytest.raises(DatabaseError, match="payment_transition"), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(status=S.COMPLETED)

    assert Payment.objects.get(pk=payment.pk).status == S.PENDING


def test_a_bare_save_of_the_status_is_refused_by_the_database(user):
    payment = PaymentFactory(user=user)
    payment.status = S.REFUNDED

    with pytest.raises(DatabaseError, match="payment_transition"), transaction.atomic():
        payment.save()

    assert Payment.objects.get(pk=payment.pk).status == S.PENDING


def test_a_second_status_write_in_the_transition_transaction_is_refused(user):
    payment = PaymentFactory(user=user)

    with pytest.raises(DatabaseError, match="payment_transition"), transaction.atomic():
        payment_transition(payment=payment, to=S.PROCESSING)
        Payment.objects.filter(pk=payment.pk).update(status=S.COMPLETED)

    assert Payment.objects.get(pk=payment.pk).status == S.PENDING


def test_writes_of_other_fields_need_no_authorisation(user):
    payment = PaymentFactory(user=user)

    Payment.objects.filter(pk=payment.pk).update(failure_reason="noted", status=S.PENDING)

    assert Payment.objects.get(pk=payment.pk).failure_reason == "noted"


@pytest.mark.django_db(transaction=True)
def test_concurrent_completions_grant_the_credits_once():
    user = UserFactory()
    payment = PaymentFactory(user=user)

    results = run_in_threads(lambda: payment_complete(payment=payment), [()] * 8)

    assert all(isinstance(r, Payment) and r.status == S.COMPLETED for r in results), results
    assert balance_get(user=user) == 10
    assert CreditTransaction.objects.filter(user=user).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_transitions_to_completed_move_once_and_refuse_the_rest_with_409():
    user = UserFactory()
    payment = PaymentFactory(user=user)

    results = run_in_threads(lambda: payment_transition(payment=payment, to=S.COMPLETED), [()] * 8)

    assert sum(isinstance(r, Payment) for r in results) == 1
    assert all(isinstance(r, InvalidTransition) for r in results if not isinstance(r, Payment)), results
    assert balance_get(user=user) == 10


@pytest.mark.django_db(transaction=True)
def test_concurrent_full_refunds_claw_back_once_with_one_refund_row():
    user = UserFactory()
    payment = payment_complete(payment=PaymentFactory(user=user))

    results = run_in_threads(
        lambda key: payment_refund(payment=payment, idempotency_key=key), [(f"k{i}",) for i in range(8)]
    )

    assert all(isinstance(r, Payment) for r in results), results
    assert balance_get(user=user) == 0
    assert PaymentRefund.objects.filter(payment=payment).count() == 1
    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.status, stored.refunded_amount, stored.credits_clawed_back) == (
        "refunded",
        Decimal("299.00"),
        10,
    )


@pytest.mark.django_db(transaction=True)
def test_the_same_refund_key_from_many_threads_refunds_once():
    user = UserFactory()
    payment = payment_complete(payment=PaymentFactory(user=user))

    results = run_in_threads(
        lambda: payment_refund(payment=payment, amount=Decimal("100.00"), idempotency_key="admin:same"),
        [()] * 8,
    )

    assert all(isinstance(r, Payment) for r in results), results
    stored = Payment.objects.get(pk=payment.pk)
    assert stored.refunded_amount == Decimal("100.00") and stored.status == S.COMPLETED
    assert list(PaymentRefund.objects.filter(payment=payment).values_list("idempotency_key", flat=True)) == [
        "admin:same"
    ]


def test_each_refund_is_a_row_whose_totals_are_the_payments(user):
    payment = payment_complete(payment=PaymentFactory(user=user))  # 299.00 THB, 10 credits
    credits_charge(user=user, amount=8, idempotency_key="spend")

    payment_refund(payment=payment, amount=Decimal("149.50"), idempotency_key="admin:a", reason="half")
    payment_refund(payment=payment, idempotency_key="stripe:event:evt_1", reason="the rest")

    rows = list(PaymentRefund.objects.filter(payment=payment).order_by("created_at", "id"))
    stored = Payment.objects.get(pk=payment.pk)
    assert [(r.amount, r.credits_clawed_back, r.shortfall) for r in rows] == [
        (Decimal("149.50"), 2, 3),
        (Decimal("149.50"), 0, 5),
    ]
    assert stored.status == S.REFUNDED
    assert stored.refunded_amount == sum(r.amount for r in rows) == stored.amount
    assert stored.credits_clawed_back == 2 and stored.refund_shortfall == 8
    assert balance_get(user=user) == 0
    assert rows[0].ledger_entry.idempotency_key == f"payment:{payment.pk}:clawback"
    assert rows[1].ledger_entry is None


def test_a_replayed_refund_key_changes_nothing(user):
    payment = payment_complete(payment=PaymentFactory(user=user))
    payment_refund(payment=payment, amount=Decimal("99.00"), idempotency_key="admin:x")

    payment_refund(payment=payment, amount=Decimal("99.00"), idempotency_key="admin:x")

    assert Payment.objects.get(pk=payment.pk).refunded_amount == Decimal("99.00")
    assert PaymentRefund.objects.filter(payment=payment).count() == 1


def test_a_provider_refund_id_is_applied_once(user):
    payment = payment_complete(payment=PaymentFactory(user=user))
    payment_refund(
        payment=payment, amount=Decimal("50.00"), idempotency_key="api:1", provider_refund_id="re_1"
    )

    payment_refund(
        payment=payment, amount=Decimal("50.00"), idempotency_key="hook:1", provider_refund_id="re_1"
    )

    assert Payment.objects.get(pk=payment.pk).refunded_amount == Decimal("50.00")


def test_the_payment_detail_api_lists_the_refund_rows(user, auth_client):
    payment = payment_complete(payment=PaymentFactory(user=user))
    payment_refund(payment=payment, amount=Decimal("29.90"), idempotency_key="admin:r", reason="damaged")

    body = auth_client.get(f"/api/credits/payments/{payment.pk}").json()

    assert [
        (r["amount"], r["credits_clawed_back"], r["shortfall"], r["reason"]) for r in body["refunds"]
    ] == [("29.90", 1, 0, "damaged")]


def test_balance_lock_creates_a_missing_row_and_returns_its_balance(user):
    with transaction.atomic():
        pk, balance = balance_lock(user_id=user.pk)
    credits_grant(user=user, amount=3, idempotency_key="g")
    with transaction.atomic():
        again = balance_lock(user_id=user.pk)

    assert balance == 0 and again == (pk, 3)


MIGRATION = importlib.import_module("credits.migrations.0009_payment_refunds_from_metadata")


def test_the_data_migration_moves_json_refunds_into_rows_and_back(user):
    # given a payment refunded twice the old way: ledger rows plus a JSON list on the payment
    payment = PaymentFactory(user=user, status=S.COMPLETED, completed_at="2026-01-01T00:00:00Z")
    credits_grant(user=user, amount=10, idempotency_key=f"payment:{payment.pk}:purchase", type="purchase")
    credits_charge(user=user, amount=8, idempotency_key="spent")
    credits_grant(user=user, amount=-2, idempotency_key=f"payment:{payment.pk}:clawback", type="adjustment")
    first = {"key": "admin:t1", "amount": "149.50", "credits": 2, "reason": "half", "by": str(user.pk)}
    second = {"key": "", "amount": "149.50", "credits": 0, "reason": "", "by": None}
    legacy = [
        {**first, "at": "2026-01-02T00:00:00+00:00"},
        {**second, "at": "2026-01-03T00:00:00+00:00"},
    ]
    Payment.objects.filter(pk=payment.pk).update(
        metadata={"checkout": {"reference": "r"}, "refunds": legacy},
        refunded_amount=Decimal("299.00"),
        credits_clawed_back=2,
        refund_shortfall=8,
    )

    # when it runs forward
    MIGRATION.forward(django_apps, None)

    # then each entry is a row, and the totals add up to the payment's
    rows = list(PaymentRefund.objects.filter(payment=payment).order_by("created_at"))
    assert [(r.idempotency_key, r.amount, r.credits_clawed_back, r.shortfall) for r in rows] == [
        ("admin:t1", Decimal("149.50"), 2, 3),
        (f"legacy:{payment.pk}:2", Decimal("149.50"), 0, 5),
    ]
    assert rows[0].created_by_id == user.pk and rows[0].ledger_entry.amount == -2
    assert rows[0].created_at.isoformat() == "2026-01-02T00:00:00+00:00"
    assert Payment.objects.get(pk=payment.pk).metadata == {"checkout": {"reference": "r"}}

    # and backward restores the list
    MIGRATION.backward(django_apps, None)

    assert Payment.objects.get(pk=payment.pk).metadata == {"checkout": {"reference": "r"}, "refunds": legacy}
    assert not PaymentRefund.objects.exists()
