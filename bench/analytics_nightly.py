"""Nightly analytics generation vs. one hand-written SQL statement, and the sales API's latency.

    .venv/bin/python bench/analytics_nightly.py [--shops 1000] [--days 365] [--requests 200]

Creates its own database `bench_analytics_nightly` (dropped at the end), migrates it and
generates with set-based SQL (generate_series, no Python loops over rows): `--shops` shops in
four timezones (Bangkok, UTC, New York, Los Angeles) and two currencies, 20 items each, and
1–3 orders per shop and local day (by shop) of two lines each over `--days` days (default: ≥
1,000,000 order lines), 5 % of them cancelled 0–5 days later. Then it measures, in one run:

- (a) the nightly generation of ONE local day for every shop: `metrics_generate_shops` (three
  upserts: daily sales, categories, products) vs. ONE hand-written statement that computes the
  same rows for the three tables (data-modifying CTEs, plain ON CONFLICT DO UPDATE);
- (b) a full backfill of every day, the same two ways;
- for both, the rows each way wrote are compared (they must be identical);
- (c) `GET /api/shops/<id>/analytics/sales` over the whole range (interval=day) for the busiest
  and the quietest shop, in-process through DRF's test client with a real JWT, p50/p95.

Prints the figures and the ratio service / hand SQL (target ≤ 1.2×) and p95 (target < 20 ms).
"""

import argparse
import time
from datetime import date, timedelta

from harness import (
    close_django_connections,
    configure,
    create_database,
    drop_database,
    percentiles,
    setup_django,
)

BENCH_DB = "bench_analytics_nightly"
configure(BENCH_DB)

START = date(2025, 1, 1)
ITEMS_PER_SHOP = 20
TIMEZONES = ["Asia/Bangkok", "UTC", "America/New_York", "America/Los_Angeles"]

DATA_SQL = """
INSERT INTO accounts_user (id, email, password, name, phone_number, organization, job_title, country,
    industry, tax_id, billing_address,
    tier, model_limit, models_used, time_spent, max_step_reached, last_session_final_step, is_active,
        is_staff,
    is_superuser, date_joined, created_at, updated_at)
SELECT gen_random_uuid(), 'owner' || n || '@bench.example', '!', '', '', '', '', '', '', '', '', 'free', 3,
    0, 0, 0, 0,
       true, false, false, now(), now(), now()
  FROM generate_series(1, %(shops)s) n;

INSERT INTO shops_shop (id, owner_id, name, slug, currency, timezone, plan, plan_status, plan_price,
    billing_cycle,
    created_at, updated_at)
SELECT gen_random_uuid(), u.id, 'Shop ' || u.n, 'shop-' || u.n,
    CASE WHEN u.n %% 2 = 0 THEN 'THB' ELSE 'USD' END,
       (%(tzs)s::text[])[1 + u.n %% 4], 'free', 'active', 0, 'monthly', now(), now()
  FROM (SELECT id, row_number() OVER (ORDER BY email) AS n FROM accounts_user) u;

INSERT INTO shops_teammember (id, shop_id, user_id, role, created_at, updated_at)
SELECT gen_random_uuid(), id, owner_id, 'owner', now(), now() FROM shops_shop;

INSERT INTO shops_item (id, shop_id, sku, name, description, kind, category, price, cost, stock_quantity,
    low_stock_threshold, track_stock, is_active, created_at, updated_at)
SELECT gen_random_uuid(), s.id, 'SKU-' || k, 'Item ' || k, '', 'product', 'cat-' || (k %% 5),
       (10 + k * 7)::numeric(12, 2), (4 + k * 3)::numeric(12, 2), 0, 0, true, true, now(), now()
  FROM shops_shop s CROSS JOIN generate_series(0, %(items)s - 1) k;

CREATE TEMP TABLE shop_n AS
SELECT id AS shop_id, timezone AS tz, row_number() OVER (ORDER BY slug) AS n FROM shops_shop;

CREATE TEMP TABLE bench_orders AS
SELECT gen_random_uuid() AS id, s.shop_id, s.n, d::date AS day, k,
       ((d::date)::timestamp + make_interval(secs => (hashtext(s.n || ':' || d::date || ':' || k) & 65535)
            * 86399.0 / 65535)) AT TIME ZONE s.tz AS submitted_at,
       (hashtext('c' || s.n || ':' || d::date || ':' || k) & 1023) < 51 AS cancelled
  FROM shop_n s
 CROSS JOIN generate_series(%(start)s::date, %(start)s::date + %(days)s - 1, interval '1 day') d
 CROSS JOIN LATERAL generate_series(1, 1 + (s.n %% 3)::int) k;

INSERT INTO shops_formsubmission (id, shop_id, form_id, customer_name, customer_phone, customer_email,
    customer_address, customer_extra, note, total, currency, status, payment_method_id, submitted_at,
    status_changed_at, cancelled_at, created_at, updated_at)
SELECT o.id, o.shop_id, NULL, 'C', '08' || ((hashtext(o.id::text) & 4095)), '', '', '{}', '', 0,
       CASE WHEN o.n %% 2 = 0 THEN 'THB' ELSE 'USD' END,
       CASE WHEN o.cancelled THEN 'cancelled' ELSE 'completed' END, NULL, o.submitted_at, NULL,
       CASE WHEN o.cancelled THEN o.submitted_at + make_interval(hours => (hashtext(o.id::text) & 127)) END,
       o.submitted_at, o.submitted_at
  FROM bench_orders o;

INSERT INTO shops_formsubmissionline (id, submission_id, item_id, item_name, sku, quantity, unit_price,
    unit_cost,
    line_total, stock_deducted, created_at, updated_at)
SELECT gen_random_uuid(), o.id, i.id, i.name, i.sku, q.qty, i.price, i.cost, i.price * q.qty, false,
       o.submitted_at, o.submitted_at
  FROM bench_orders o
 CROSS JOIN generate_series(0, 1) j
 CROSS JOIN LATERAL (SELECT 1 + ((o.k + j + o.n) %% 3)::int AS qty,
                            'SKU-' || ((hashtext(o.id::text) & 1023) %% 10 + j * 10) AS sku) q
  JOIN shops_item i ON i.shop_id = o.shop_id AND i.sku = q.sku;

UPDATE shops_formsubmission o SET total = t.total
  FROM (SELECT submission_id, SUM(line_total) AS total FROM shops_formsubmissionline GROUP BY 1) t
 WHERE t.submission_id = o.id;

ANALYZE
"""

# The hand-written baseline: ONE statement computing and writing the same rows of the three tables.
HAND_SQL = """
WITH sh AS (
    SELECT id, timezone AS tz,
           %(date_from)s::date AS d_from, %(date_to)s::date AS d_to,
           %(date_from)s::date::timestamp AT TIME ZONE timezone AS lo,
           (%(date_to)s::date + 1)::timestamp AT TIME ZONE timezone AS hi
      FROM shops_shop
),
ord AS (
    SELECT o.shop_id, (o.submitted_at AT TIME ZONE sh.tz)::date AS date, COUNT(*) AS n,
           COUNT(DISTINCT COALESCE(NULLIF(o.customer_phone, ''),
                                   NULLIF(lower(o.customer_email), ''))) AS customers
      FROM sh JOIN shops_formsubmission o ON o.shop_id = sh.id
                                        AND o.submitted_at >= sh.lo AND o.submitted_at < sh.hi
     GROUP BY 1, 2
),
ln AS (
    SELECT o.shop_id, sh.tz, (o.submitted_at AT TIME ZONE sh.tz)::date AS date, o.id AS oid, l.item_id,
           1 AS sg, l.quantity, l.line_total, l.unit_cost * l.quantity AS cost
      FROM sh JOIN shops_formsubmission o ON o.shop_id = sh.id
                                        AND o.submitted_at >= sh.lo AND o.submitted_at < sh.hi
      JOIN shops_formsubmissionline l ON l.submission_id = o.id
    UNION ALL
    SELECT o.shop_id, sh.tz, (o.cancelled_at AT TIME ZONE sh.tz)::date, o.id, l.item_id, -1,
           l.quantity, l.line_total, l.unit_cost * l.quantity
      FROM sh JOIN shops_formsubmission o ON o.shop_id = sh.id AND o.status = 'cancelled'
                                        AND o.cancelled_at >= sh.lo AND o.cancelled_at < sh.hi
      JOIN shops_formsubmissionline l ON l.submission_id = o.id
),
day AS (
    SELECT shop_id, date,
           SUM(quantity) FILTER (WHERE sg = 1) AS items, SUM(line_total) FILTER (WHERE sg = 1) AS rev,
           SUM(cost) FILTER (WHERE sg = 1) AS cost, COUNT(DISTINCT oid) FILTER (WHERE sg = -1) AS c_n,
           SUM(line_total) FILTER (WHERE sg = -1) AS c_rev, SUM(cost) FILTER (WHERE sg = -1) AS c_cost
      FROM ln GROUP BY 1, 2
),
w1 AS (
    INSERT INTO analytics_dailysalesmetric (shop_id, date, orders, items_sold, gross_revenue,
        cancelled_orders,
        cancelled_revenue, net_revenue, cost, gross_profit, avg_order_value, unique_customers,
            created_at, updated_at)
    SELECT sh.id, g::date, COALESCE(o.n, 0), COALESCE(d.items, 0), COALESCE(d.rev, 0), COALESCE(d.c_n, 0),
           COALESCE(d.c_rev, 0), COALESCE(d.rev, 0) - COALESCE(d.c_rev, 0),
           COALESCE(d.cost, 0) - COALESCE(d.c_cost, 0),
           COALESCE(d.rev, 0) - COALESCE(d.c_rev, 0) - COALESCE(d.cost, 0) + COALESCE(d.c_cost, 0),
           CASE WHEN o.n > 0 THEN COALESCE(d.rev, 0) / o.n ELSE 0 END, COALESCE(o.customers, 0), now(), now()
      FROM sh CROSS JOIN generate_series(sh.d_from, sh.d_to, interval '1 day') g
      LEFT JOIN ord o ON o.shop_id = sh.id AND o.date = g::date
      LEFT JOIN day d ON d.shop_id = sh.id AND d.date = g::date
    ON CONFLICT (shop_id, date) DO UPDATE SET orders = EXCLUDED.orders, items_sold = EXCLUDED.items_sold,
        gross_revenue = EXCLUDED.gross_revenue, cancelled_orders = EXCLUDED.cancelled_orders,
        cancelled_revenue = EXCLUDED.cancelled_revenue, net_revenue = EXCLUDED.net_revenue,
            cost = EXCLUDED.cost,
        gross_profit = EXCLUDED.gross_profit, avg_order_value = EXCLUDED.avg_order_value,
        unique_customers = EXCLUDED.unique_customers, updated_at = EXCLUDED.updated_at
    RETURNING 1
),
w2 AS (
    INSERT INTO analytics_categorydailymetric (shop_id, date, category, items_sold, revenue, cost, profit,
        created_at, updated_at)
    SELECT ln.shop_id, ln.date, i.category, SUM(sg * quantity), SUM(sg * line_total), SUM(sg * ln.cost),
           SUM(sg * (line_total - ln.cost)), now(), now()
      FROM ln JOIN shops_item i ON i.id = ln.item_id GROUP BY 1, 2, 3
    ON CONFLICT (shop_id, date, category) DO UPDATE SET items_sold = EXCLUDED.items_sold,
        revenue = EXCLUDED.revenue, cost = EXCLUDED.cost, profit = EXCLUDED.profit,
            updated_at = EXCLUDED.updated_at
    RETURNING 1
),
pg AS (
    SELECT item_id, date, shop_id, tz, SUM(sg) AS n, SUM(sg * quantity) AS units, SUM(sg * line_total) AS rev,
           SUM(sg * cost) AS cost
      FROM ln GROUP BY 1, 2, 3, 4
),
w3 AS (
    INSERT INTO analytics_productanalytics (item_id, date, shop_id, orders, units_sold, revenue, cost, profit,
        margin_pct, stock_end, sell_through_pct, created_at, updated_at)
    SELECT pg.item_id, pg.date, pg.shop_id, pg.n, pg.units, pg.rev, pg.cost, pg.rev - pg.cost,
           CASE WHEN pg.rev > 0 THEN (pg.rev - pg.cost) * 100 / pg.rev END, st.stock_end,
           CASE WHEN GREATEST(pg.units, 0) + st.stock_end > 0
                THEN GREATEST(pg.units, 0) * 100.0 / (GREATEST(pg.units, 0) + st.stock_end) END,
           now(), now()
      FROM pg JOIN shops_item i ON i.id = pg.item_id
      CROSS JOIN LATERAL (SELECT CASE WHEN i.track_stock THEN COALESCE(
          (SELECT h.quantity_after FROM shops_stockhistory h WHERE h.item_id = pg.item_id
              AND h.created_at < (pg.date + 1)::timestamp AT TIME ZONE pg.tz ORDER BY h.id DESC LIMIT 1),
          (SELECT h.quantity_before FROM shops_stockhistory h WHERE h.item_id = pg.item_id
              AND h.created_at >= (pg.date + 1)::timestamp AT TIME ZONE pg.tz ORDER BY h.id LIMIT 1),
          i.stock_quantity) END AS stock_end) st
    ON CONFLICT (item_id, date) DO UPDATE SET orders = EXCLUDED.orders, units_sold = EXCLUDED.units_sold,
        revenue = EXCLUDED.revenue, cost = EXCLUDED.cost, profit = EXCLUDED.profit,
        margin_pct = EXCLUDED.margin_pct, stock_end = EXCLUDED.stock_end,
        sell_through_pct = EXCLUDED.sell_through_pct, updated_at = EXCLUDED.updated_at
    RETURNING 1
)
SELECT (SELECT COUNT(*) FROM w1), (SELECT COUNT(*) FROM w2), (SELECT COUNT(*) FROM w3)
"""

TABLES = ["analytics_dailysalesmetric", "analytics_categorydailymetric", "analytics_productanalytics"]
FINGERPRINT = {
    "analytics_dailysalesmetric": "shop_id, date, orders, items_sold, gross_revenue, cancelled_orders, "
    "cancelled_revenue, net_revenue, cost, gross_profit, avg_order_value, unique_customers",
    "analytics_categorydailymetric": "shop_id, date, category, items_sold, revenue, cost, profit",
    "analytics_productanalytics": "item_id, date, shop_id, orders, units_sold, revenue, cost, profit, "
    "margin_pct, stock_end, sell_through_pct",
}


def fingerprint(cursor) -> dict:
    """Row count and an order-independent checksum of every stored row, per table."""
    out = {}
    for table in TABLES:
        cursor.execute(
            f"SELECT COUNT(*), COALESCE(SUM(hashtext(({FINGERPRINT[table]})::text)::numeric), 0) FROM {table}"
        )
        out[table] = cursor.fetchone()
    return out


def truncate(cursor) -> None:
    cursor.execute("TRUNCATE " + ", ".join(TABLES))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(label: str, date_from: date, date_to: date, repeats: int) -> tuple[float, float]:
    from django.db import connection

    from analytics.services import metrics_generate_shops

    params = {"date_from": date_from, "date_to": date_to}
    hand_times, service_times = [], []
    with connection.cursor() as cursor:
        for _ in range(repeats):
            truncate(cursor)
            hand_times.append(timed(lambda: cursor.execute(HAND_SQL, params)))
            hand_rows = fingerprint(cursor)
            truncate(cursor)
            service_times.append(timed(lambda: metrics_generate_shops(date_from=date_from, date_to=date_to)))
            service_rows = fingerprint(cursor)
            if hand_rows != service_rows:
                raise SystemExit(f"{label}: the two ways wrote different rows: {hand_rows} vs {service_rows}")
        rerun = timed(lambda: metrics_generate_shops(date_from=date_from, date_to=date_to))
    hand, service = min(hand_times), min(service_times)
    rows = ", ".join(f"{t.split('_')[1]} {n:,}" for t, (n, _) in service_rows.items())
    print(
        f"{label:<28}{service:>10.2f} s{hand:>10.2f} s{service / hand:>8.2f}×   rows: {rows}; "
        f"identical rows: yes; idempotent re-run {rerun:.2f} s",
        flush=True,
    )
    return service, hand


def api_latency(date_from: date, date_to: date, requests: int) -> None:
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    from shops.models import FormSubmission, Shop

    counts = {
        row["shop_id"]: row["n"]
        for row in FormSubmission.objects.values("shop_id")
        .annotate(n=__import__("django.db.models", fromlist=["Count"]).Count("id"))
        .order_by()
    }
    busiest = max(counts, key=counts.get)
    quietest = min(counts, key=counts.get)
    print(
        f"(c) GET …/analytics/sales?from={date_from}&to={date_to}&interval=day ({requests} requests, "
        "in-process APIClient, real JWT)"
    )
    for label, shop_id in (("busiest", busiest), ("quietest", quietest)):
        shop = Shop.objects.select_related("owner").get(pk=shop_id)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(shop.owner).access_token}")
        path = f"/api/shops/{shop.pk}/analytics/sales?from={date_from}&to={date_to}&interval=day"
        for _ in range(10):
            assert client.get(path).status_code == 200
        samples = []
        for _ in range(requests):
            start = time.perf_counter()
            response = client.get(path)
            samples.append((time.perf_counter() - start) * 1000)
            assert (
                response.status_code == 200
                and len(response.json()["results"]) == (date_to - date_from).days + 1
            )
        p50, p95 = percentiles(samples)
        print(
            f"    {label:<9} shop ({counts[shop_id]:,} orders): p50 {p50:.1f} ms, p95 {p95:.1f} ms "
            f"(target p95 < 20 ms)",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shops", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per cell of (a); best is shown")
    args = parser.parse_args()
    try:
        create_database(BENCH_DB)
        setup_django()
        from django.db import connection

        started = time.perf_counter()
        with connection.cursor() as cursor:
            params = {
                "shops": args.shops,
                "items": ITEMS_PER_SHOP,
                "tzs": TIMEZONES,
                "start": START,
                "days": args.days,
            }
            for statement in DATA_SQL.split(";\n\n"):
                cursor.execute(statement, params)
            cursor.execute(
                "SELECT (SELECT COUNT(*) FROM shops_formsubmission), "
                "(SELECT COUNT(*) FROM shops_formsubmissionline), "
                "(SELECT COUNT(*) FROM shops_formsubmission WHERE status = 'cancelled')"
            )
            orders, lines, cancelled = cursor.fetchone()
        last = START + timedelta(days=args.days - 1)
        print(
            f"analytics nightly benchmark: {args.shops:,} shops × {args.days} days, {orders:,} orders, "
            f"{lines:,} order lines, {cancelled:,} cancelled "
            f"(generated in {time.perf_counter() - started:.0f} s)"
        )
        print(f"{'':<28}{'service':>12}{'hand SQL':>12}{'ratio':>9}")
        compare(f"(a) one day ({last}), all shops", last, last, args.repeats)
        compare(f"(b) backfill {args.days} days", START, last, 1)
        print("ratio target ≤ 1.2×")
        api_latency(START, last, args.requests)
    finally:
        close_django_connections()
        drop_database(BENCH_DB)


if __name__ == "__main__":
    main()
