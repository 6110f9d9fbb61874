"""Real threads against real PostgreSQL: each thread has its own connection and transaction."""

import threading

import pytest
from django.db import connection

from config.exceptions import ApplicationError
from shops import services
from shops.models import FormSubmission, StockHistory
from tests.shops.factories import assert_chain, make_form, make_item, make_shop, place_order

pytestmark = pytest.mark.django_db(transaction=True)


def run_threads(count: int, target) -> list:
    """Start `count` threads at once (behind a barrier); return each one's result or exception."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def runner(index):
        try:
            barrier.wait()
            results[index] = target(index)
        except Exception as exc:  # collected and asserted on by the test
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_thirty_concurrent_one_unit_orders_against_ten_in_stock_sell_exactly_ten():
    # given
    shop = make_shop()
    item = make_item(shop, stock=10)
    form = make_form(shop)
    # when
    results = run_threads(30, lambda i: place_order(form, [(item, 1)]))
    # then
    succeeded = [r for r in results if isinstance(r, FormSubmission)]
    refused = [r for r in results if isinstance(r, ApplicationError)]
    assert len(succeeded) == 10, results
    assert len(refused) == 20 and all(r.code == "insufficient_stock" for r in refused), results
    item.refresh_from_db()
    assert item.stock_quantity == 0
    assert FormSubmission.objects.filter(shop=shop).count() == 10
    assert StockHistory.objects.filter(item=item, reason="order").count() == 10
    assert_chain(item)


def test_orders_over_the_same_two_items_in_opposite_line_order_never_deadlock():
    # given
    shop = make_shop()
    a, b = make_item(shop, stock=1000), make_item(shop, stock=1000)
    form = make_form(shop)
    rounds = 15

    def order_repeatedly(index):
        lines = [(a, 1), (b, 2)] if index % 2 == 0 else [(b, 2), (a, 1)]
        for _ in range(rounds):
            place_order(form, lines)
        return "ok"

    # when
    results = run_threads(4, order_repeatedly)
    # then: no thread saw an error (a deadlock would surface as OperationalError here)
    assert results == ["ok"] * 4, results
    a.refresh_from_db()
    b.refresh_from_db()
    orders = 4 * rounds
    assert FormSubmission.objects.filter(shop=shop).count() == orders
    assert (a.stock_quantity, b.stock_quantity) == (1000 - orders, 1000 - 2 * orders)
    assert_chain(a)
    assert_chain(b)


def test_cancelling_an_order_twice_concurrently_restocks_exactly_once():
    # given
    shop = make_shop()
    a, b = make_item(shop, stock=5), make_item(shop, stock=5)
    form = make_form(shop)
    order = place_order(form, [(a, 2), (b, 3)])

    # when
    results = run_threads(
        2, lambda i: services.order_transition(shop_id=shop.pk, order_id=order.pk, to="cancelled")
    )
    # then
    cancelled = [r for r in results if isinstance(r, FormSubmission)]
    refused = [r for r in results if isinstance(r, ApplicationError)]
    assert len(cancelled) == 1 and len(refused) == 1, results
    assert refused[0].code == "invalid_transition" and refused[0].status_code == 409
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.stock_quantity, b.stock_quantity) == (5, 5)
    assert StockHistory.objects.filter(reason="cancellation").count() == 2
    assert_chain(a)
    assert_chain(b)


def test_concurrent_first_messages_from_one_customer_share_one_conversation():
    shop = make_shop()
    results = run_threads(
        4,
        lambda i: services.conversation_receive_message(
            shop=shop, channel="line", customer_handle="U123", text=f"hello {i}"
        ),
    )
    assert all(isinstance(r, tuple) for r in results), results
    assert shop.conversations.count() == 1
    assert shop.conversations.get().messages.count() == 4
