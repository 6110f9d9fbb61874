"""The order state machine: one table (shops/states.py), one writer (`order_transition`), held by
a trigger on the orders table; cancelling restocks once, also under concurrency."""

import pytest
from django.db import DatabaseError, transaction

from config.exceptions import InvalidTransition
from shops import services
from shops.models import FormSubmission, StockHistory
from shops.states import ORDER_TRANSITIONS
from tests.credits.conftest import run_in_threads
from tests.shops.factories import assert_chain, make_form, make_item, make_shop, place_order

pytestmark = pytest.mark.django_db

ALLOWED = [(a, b) for a, targets in ORDER_TRANSITIONS.items() for b in sorted(targets)]
REFUSED = [(a, b) for a in ORDER_TRANSITIONS for b in ORDER_TRANSITIONS if b not in ORDER_TRANSITIONS[a]]
# How to reach each status from `new` through legal moves.
WALK_TO = {
    "new": [],
    "confirmed": ["confirmed"],
    "paid": ["paid"],
    "shipped": ["paid", "shipped"],
    "completed": ["paid", "shipped", "completed"],
    "cancelled": ["cancelled"],
}


def _order_at(status, stock=5, quantity=2):
    shop = make_shop()
    item = make_item(shop, stock=stock)
    order = place_order(make_form(shop), [(item, quantity)])
    for step in WALK_TO[status]:
        services.order_transition(shop_id=shop.pk, order_id=order.pk, to=step)
    return order, item


def test_every_status_in_the_table_is_reachable_by_the_walks():
    assert set(WALK_TO) == set(ORDER_TRANSITIONS)


@pytest.mark.parametrize(("start", "to"), ALLOWED)
def test_every_move_in_the_table_is_allowed(start, to):
    order, item = _order_at(start)

    moved = services.order_transition(shop_id=order.shop_id, order_id=order.pk, to=to)

    assert moved.status == to == FormSubmission.objects.get(pk=order.pk).status
    item.refresh_from_db()
    assert item.stock_quantity == (5 if to == "cancelled" else 3)


@pytest.mark.parametrize(("start", "to"), REFUSED)
def test_every_move_outside_the_table_is_a_409_and_changes_nothing(start, to):
    order, item = _order_at(start)
    history = StockHistory.objects.count()

    with pytest.raises(InvalidTransition) as caught:
        services.order_transition(shop_id=order.shop_id, order_id=order.pk, to=to)

    assert (caught.value.status_code, caught.value.code) == (409, "invalid_transition")
    assert FormSubmission.objects.get(pk=order.pk).status == start
    assert StockHistory.objects.count() == history


def test_a_bare_update_of_the_status_is_refused_by_the_database():
    order, item = _order_at("new")

    with pytest.raises(DatabaseError, match="order_transition"), transaction.atomic():
        FormSubmission.objects.filter(pk=order.pk).update(status="cancelled")

    assert FormSubmission.objects.get(pk=order.pk).status == "new"


def test_a_bare_save_of_the_status_is_refused_by_the_database():
    order, item = _order_at("paid")
    order.status = "completed"

    with pytest.raises(DatabaseError, match="order_transition"), transaction.atomic():
        order.save()

    assert FormSubmission.objects.get(pk=order.pk).status == "paid"


def test_a_second_status_write_in_the_transition_transaction_is_refused():
    order, item = _order_at("new")

    with pytest.raises(DatabaseError, match="order_transition"), transaction.atomic():
        services.order_transition(shop_id=order.shop_id, order_id=order.pk, to="paid")
        FormSubmission.objects.filter(pk=order.pk).update(status="shipped")

    assert FormSubmission.objects.get(pk=order.pk).status == "new"


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_cancels_restock_once_and_the_rest_are_409():
    order, item = _order_at("paid", stock=5, quantity=4)

    results = run_in_threads(
        lambda: services.order_transition(shop_id=order.shop_id, order_id=order.pk, to="cancelled"), [()] * 8
    )

    assert sum(isinstance(r, FormSubmission) for r in results) == 1, results
    assert all(isinstance(r, InvalidTransition) for r in results if not isinstance(r, FormSubmission))
    item.refresh_from_db()
    assert item.stock_quantity == 5
    assert StockHistory.objects.filter(item=item, reason="cancellation").count() == 1
    assert_chain(item)
