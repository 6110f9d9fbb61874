"""Orders per second through `shops.services.order_process_stock_changes` vs. raw SQL.

    .venv/bin/python bench/shops_orders.py [--seconds 3] [--items 1000] [--workers 8]

Creates its own database `bench_shops_orders` (dropped at the end), migrates it, creates one
shop with one "hot" item and 1,000 other items (large stocks, each with its opening history
row), then runs 8 concurrent workers (threads, one database connection each) for a fixed time,
each order taking 1 unit of one item:

- service: `order_process_stock_changes(shop_id=..., lines=[(item_id, 1)], reference=...)` —
  lock the item row (pk order), check, update the stock, insert the history row, one transaction;
- raw:     `UPDATE shops_item SET stock_quantity = stock_quantity - 1 ... WHERE id = %s AND
  stock_quantity >= 1 RETURNING stock_quantity` plus the history INSERT, one transaction,
  through psycopg directly against the same tables (same constraints, indexes and triggers).

"hot" sends every order to one item (all workers contend for one row lock); "spread" picks one of
1,000 items at random per order. For information it also times the whole public-order path
(`order_submit`: order row, lines with price snapshots, stock) on the same scenarios. Prints
orders/s, the ratio service/raw (target >= 40%) and a check that every item's history chain holds.
"""

import argparse
import random
import time
import uuid

from harness import close_django_connections, configure, connect, create_database, drop_database, setup_django
from harness import run_threads as run

BENCH_DB = "bench_shops_orders"
configure(BENCH_DB)

START_STOCK = 1_000_000_000

RAW_UPDATE = (
    "UPDATE shops_item SET stock_quantity = stock_quantity - 1, updated_at = now() "
    "WHERE id = %s AND stock_quantity >= 1 RETURNING stock_quantity"
)
RAW_INSERT = (
    "INSERT INTO shops_stockhistory (item_id, change, quantity_before, quantity_after, reason, "
    "reference, note, user_id, created_at) VALUES (%s, -1, %s, %s, 'order', %s, '', NULL, now())"
)
CHAIN_CHECK = """
    WITH h AS (
        SELECT item_id, id, quantity_before, quantity_after,
               LAG(quantity_after) OVER (PARTITION BY item_id ORDER BY id) AS prev_after,
               ROW_NUMBER() OVER (PARTITION BY item_id ORDER BY id DESC) AS newest_rank
        FROM shops_stockhistory
    )
    SELECT
        (SELECT count(*) FROM h WHERE prev_after IS NOT NULL AND prev_after <> quantity_before),
        (SELECT count(*) FROM h JOIN shops_item i ON i.id = h.item_id
            WHERE h.newest_rank = 1 AND h.quantity_after <> i.stock_quantity),
        (SELECT count(*) FROM shops_stockhistory WHERE quantity_after < 0 OR quantity_before < 0)
"""


def setup_django_and_data(n_items: int):
    create_database(BENCH_DB)
    setup_django()
    from django.db import transaction

    from accounts.models import User
    from shops.models import Form, Item, StockHistory
    from shops.services import shop_create

    owner = User.objects.create(email="bench-owner@example.com", password="!")
    shop = shop_create(owner=owner, name="Bench shop", slug="bench-shop")
    form = Form.objects.create(shop=shop, name="Bench form", slug="bench-form")
    with transaction.atomic():
        items = Item.objects.bulk_create(
            [
                Item(
                    shop=shop,
                    sku=f"SKU-{i:05d}",
                    name=f"Item {i}",
                    price="10.00",
                    cost="4.00",
                    stock_quantity=START_STOCK,
                    low_stock_threshold=0,
                )
                for i in range(n_items + 1)
            ]
        )
        StockHistory.objects.bulk_create(
            [
                StockHistory(
                    item=item,
                    change=START_STOCK,
                    quantity_before=0,
                    quantity_after=START_STOCK,
                    reason="import",
                    reference="bench opening stock",
                )
                for item in items
            ]
        )
    return shop, form, items[0], items[1:]


def stock_service_worker(ctx, stop_at, counter, index):
    from django.db import connection

    from shops.services import order_process_stock_changes

    shop_id, item_ids = ctx
    done = 0
    prefix = f"svc:{uuid.uuid4().hex[:8]}:"
    pick = random.Random(index)
    try:
        while time.perf_counter() < stop_at:
            item_id = item_ids[0] if len(item_ids) == 1 else pick.choice(item_ids)
            order_process_stock_changes(shop_id=shop_id, lines=[(item_id, 1)], reference=f"{prefix}{done}")
            done += 1
    finally:
        connection.close()
    counter[index] = done


def order_submit_worker(ctx, stop_at, counter, index):
    from django.db import connection

    from shops.services import order_submit

    form, item_ids = ctx
    customer = {"name": "Bench", "phone": "0812345678", "address": "Bangkok"}
    done = 0
    pick = random.Random(index)
    try:
        while time.perf_counter() < stop_at:
            item_id = item_ids[0] if len(item_ids) == 1 else pick.choice(item_ids)
            order_submit(form=form, customer=customer, lines=[{"item_id": item_id, "quantity": 1}])
            done += 1
    finally:
        connection.close()
    counter[index] = done


def raw_worker(ctx, stop_at, counter, index):
    _, item_ids = ctx
    done = 0
    prefix = f"raw:{uuid.uuid4().hex[:8]}:"
    pick = random.Random(index)
    with connect(BENCH_DB) as conn:
        while time.perf_counter() < stop_at:
            item_id = item_ids[0] if len(item_ids) == 1 else pick.choice(item_ids)
            with conn.transaction():
                row = conn.execute(RAW_UPDATE, [item_id]).fetchone()
                if row is None:
                    raise RuntimeError("out of stock: the bench stock is too small")
                after = row[0]
                conn.execute(RAW_INSERT, [item_id, after + 1, after, f"{prefix}{done}"])
            done += 1
    counter[index] = done


def chain_ok() -> bool:
    with connect(BENCH_DB) as conn:
        broken, mismatched, negative = conn.execute(CHAIN_CHECK).fetchone()
    return broken == mismatched == negative == 0


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per cell (default 3)")
    parser.add_argument("--items", type=int, default=1000, help="items in the spread scenario (default 1000)")
    parser.add_argument("--workers", type=int, default=8, help="concurrent workers (default 8)")
    args = parser.parse_args()
    try:
        shop, form, hot, spread = setup_django_and_data(args.items)
        scenarios = {"hot (1 item)": [hot.pk], f"spread ({len(spread)} items)": [i.pk for i in spread]}
        print(
            f"shops orders benchmark: {args.workers} workers (threads, one connection each), "
            f"{args.seconds:.0f} s per cell, 1 unit per order"
        )
        print(f"{'scenario':<22}{'service/s':>11}{'raw SQL/s':>11}{'ratio':>8}{'full order/s':>14}")
        ratios = []
        for name, item_ids in scenarios.items():
            raw = run(raw_worker, (shop.pk, item_ids), args.workers, args.seconds)
            service = run(stock_service_worker, (shop.pk, item_ids), args.workers, args.seconds)
            full = run(order_submit_worker, (form, item_ids), args.workers, args.seconds)
            ratios.append(service / raw)
            print(f"{name:<22}{service:>11.0f}{raw:>11.0f}{service / raw:>7.0%}{full:>14.0f}", flush=True)
        print(f"service/raw: min {min(ratios):.0%} (target >= 40%)")
        print(f"stock history chain after the run: {'OK' if chain_ok() else 'BROKEN'}")
    finally:
        close_django_connections()
        drop_database(BENCH_DB)


if __name__ == "__main__":
    main()
