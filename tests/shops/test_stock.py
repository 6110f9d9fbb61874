import pytest
from django.db import IntegrityError, connection, transaction

from config.exceptions import ApplicationError, Conflict
from shops import services
from shops.models import Item, StockHistory
from shops.signals import low_stock_crossed
from tests.shops.factories import assert_chain, make_item


def test_stock_update_moves_stock_and_writes_history_with_user_and_reason(item, user):
    # when
    fresh, entry = services.stock_update(item=item, change=-3, reason="adjustment", user=user, note="broken")
    # then
    assert fresh.stock_quantity == 7
    assert (entry.quantity_before, entry.change, entry.quantity_after) == (10, -3, 7)
    assert entry.user == user and entry.reason == "adjustment" and entry.note == "broken"
    assert_chain(item)


def test_stock_update_refuses_to_go_below_zero_and_changes_nothing(item):
    with pytest.raises(Conflict) as exc:
        services.update_stock(item=item, change=-11)
    assert exc.value.code == "insufficient_stock" and exc.value.status_code == 409
    item.refresh_from_db()
    assert item.stock_quantity == 10
    assert StockHistory.objects.filter(item=item).count() == 1
    assert_chain(item)


def test_stock_update_refuses_zero_change(item):
    with pytest.raises(ApplicationError):
        services.stock_update(item=item, change=0)


def test_order_stock_changes_sum_lines_of_the_same_item(shop):
    a = make_item(shop, stock=5)
    services.process_order_stock_changes(shop_id=shop.pk, lines=[(a.pk, 2), (a.pk, 3)], reference="order:x")
    a.refresh_from_db()
    assert a.stock_quantity == 0
    row = StockHistory.objects.filter(item=a).order_by("-id").first()
    assert (row.change, row.reason, row.reference) == (-5, "order", "order:x")
    assert_chain(a)


def test_order_stock_changes_are_all_or_nothing_and_name_every_short_item(shop):
    ok, short1, short2 = make_item(shop, stock=5), make_item(shop, stock=1), make_item(shop, stock=0)
    with pytest.raises(Conflict) as exc:
        services.order_process_stock_changes(
            shop_id=shop.pk, lines=[(ok.pk, 1), (short1.pk, 2), (short2.pk, 1)], reference="order:y"
        )
    assert exc.value.code == "insufficient_stock"
    named = {entry["item_id"] for entry in exc.value.extra["items"]}
    assert named == {str(short1.pk), str(short2.pk)}
    assert short1.sku in exc.value.message and short2.sku in exc.value.message
    ok.refresh_from_db()
    assert ok.stock_quantity == 5
    assert not StockHistory.objects.filter(reason="order").exists()


def test_order_stock_changes_refuse_items_of_another_shop(shop, other_shop):
    foreign = make_item(other_shop, stock=5)
    with pytest.raises(ApplicationError) as exc:
        services.order_process_stock_changes(shop_id=shop.pk, lines=[(foreign.pk, 1)], reference="r")
    assert exc.value.code == "validation_error"
    foreign.refresh_from_db()
    assert foreign.stock_quantity == 5


def test_untracked_items_are_not_moved_by_orders(shop):
    service = make_item(shop, stock=0, kind="service", track_stock=False)
    services.order_process_stock_changes(shop_id=shop.pk, lines=[(service.pk, 3)], reference="r")
    service.refresh_from_db()
    assert service.stock_quantity == 0
    assert not StockHistory.objects.filter(item=service).exists()


def test_get_low_stock_items_lists_tracked_active_items_at_or_below_threshold(shop):
    low = make_item(shop, stock=2, low_stock_threshold=2)
    make_item(shop, stock=3, low_stock_threshold=2)
    make_item(shop, stock=0, track_stock=False)
    make_item(shop, stock=0, is_active=False)
    assert list(services.get_low_stock_items(shop=shop)) == [low]


@pytest.mark.django_db(transaction=True)
def test_low_stock_crossing_is_signalled_once_after_commit(shop):
    item = make_item(shop, stock=5, low_stock_threshold=2)
    received = []

    def receiver(sender, shop_id, item_ids, **kwargs):
        # After commit: the new stock is visible from a fresh query.
        received.append((shop_id, item_ids, Item.objects.get(pk=item_ids[0]).stock_quantity))

    low_stock_crossed.connect(receiver)
    try:
        with transaction.atomic():
            services.stock_update(item=item, change=-2)  # 5 → 3: still above
            services.stock_update(item=item, change=-1)  # 3 → 2: crosses
            assert received == []  # nothing before commit
        services.stock_update(item=item, change=-1)  # 2 → 1: already low, no new crossing
    finally:
        low_stock_crossed.disconnect(receiver)
    assert received == [(shop.pk, [item.pk], 2)]


@pytest.mark.django_db(transaction=True)
def test_low_stock_is_not_signalled_when_the_transaction_rolls_back(shop):
    item = make_item(shop, stock=5, low_stock_threshold=2)
    received = []

    def receiver(**kwargs):
        received.append(kwargs)

    low_stock_crossed.connect(receiver)
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.stock_update(item=item, change=-4)
            raise RuntimeError("boom")
    finally:
        low_stock_crossed.disconnect(receiver)
    assert received == []


# --- the database holds the invariants even when code does not -------------------------------


def _raw(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_database_refuses_negative_stock(item):
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=item.pk).update(stock_quantity=-1)


def test_database_refuses_duplicate_sku_in_one_shop_but_allows_it_across_shops(shop, other_shop):
    make_item(shop, sku="DUP")
    make_item(other_shop, sku="DUP")
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.create(shop=shop, sku="DUP", name="again")


def test_database_refuses_a_history_row_that_does_not_chain(item):
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=item.pk).update(stock_quantity=12)
        StockHistory.objects.create(
            item=item, change=2, quantity_before=9, quantity_after=11, reason="manual"
        )


def test_database_refuses_a_stock_change_without_history_at_commit(item):
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=item.pk).update(stock_quantity=3)
        _raw("SET CONSTRAINTS ALL IMMEDIATE", [])


def test_database_refuses_negative_history_quantities(item):
    with pytest.raises(IntegrityError), transaction.atomic():
        StockHistory.objects.create(
            item=item, change=-11, quantity_before=10, quantity_after=-1, reason="manual"
        )


def test_stock_history_rows_cannot_be_updated(item):
    row = StockHistory.objects.get(item=item)
    with pytest.raises(Exception, match="stock_history_append_only|Cannot update"), transaction.atomic():
        StockHistory.objects.filter(pk=row.pk).update(note="rewritten")


def test_database_refuses_a_second_restock_of_the_same_order(item):
    services.order_process_stock_changes(shop_id=item.shop_id, lines=[(item.pk, 2)], reference="order:1")
    services.order_process_stock_changes(
        shop_id=item.shop_id, lines=[(item.pk, 2)], reference="order:1", restock=True
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        services.order_process_stock_changes(
            shop_id=item.shop_id, lines=[(item.pk, 2)], reference="order:1", restock=True
        )
    assert_chain(item)
