"""Reads vs the caller's history: every history-dependent endpoint for a small and a large owner.

    .venv/bin/python bench/history_scale.py [--rows 100000] [--small-rows 10] [--requests 100]
    .venv/bin/python bench/history_scale.py --rows 1000000      # the size issue 14 names

Creates its own database `bench_history_scale` (dropped at the end). Two owners:

- small: a user with `--small-rows` ledger rows and jobs, a shop whose item has that many
  stock-history rows, that many orders, and a conversation with that many messages;
- large: the same with `--rows` of each (loaded set-based with `INSERT … SELECT generate_series`
  with triggers off for the load, as an operator would for a bulk import; the job rollup is then
  rebuilt with `job_daily_stats_rebuild` and the database VACUUM ANALYZEd).

For every endpoint it sends `--requests` GETs through the whole Django stack (DRF's test client:
middleware, JWT auth, view, selector, serializer) as each owner and prints p50/p95 and the
large/small p95 ratio (issue 14's target: ≤ 1.5×). Lists are measured on page 1 and on a deep
page: `?page=N` in the middle of the large history (offset `--deep-offset`, default half the
rows), or — when the endpoint answers `?cursor=` with a `next` link by cursor — the cursor reached by
walking the `next` links with page_size=100 up to that offset (then asked with the default
page size). The small owner's "deep" request
is its page 1 (it has no deeper page).

Raw-SQL baseline in the same run: for each endpoint, the indexed statement a history-independent
implementation needs (the stored balance row; the first 20 rows by the list's index; the same
rows after a keyset position at the deep offset), timed through psycopg on the large owner —
the floor the endpoint could reach whatever the history size.
"""

import argparse
import time
import warnings
from datetime import date, timedelta

from harness import configure, connect, create_database, drop_database, percentiles, setup_django

DB = "bench_history_scale"

JOB_COLUMNS = (
    "id, created_at, updated_at, user_id, kind_id, external_id, status, priority, runs_on_engine, "
    "params, requested_count, successful_count, failed_count, progress, attempts, max_retries, "
    "credits_charged, credits_refunded, charged, holds_model_slot, result, error, queued_at"
)

# Every load runs with session_replication_role = replica (no triggers, no FK checks: the rows
# are consistent by construction); CHECK constraints still apply.
LOAD = {
    "ledger": """
INSERT INTO credits_credittransaction (id, created_at, updated_at, user_id, type, amount, balance_after,
                                       job_id, payment_id, idempotency_key, reason, created_by_id)
SELECT gen_random_uuid(), ts, ts, %(user)s,
       CASE WHEN i %% 3 = 0 THEN 'usage' ELSE 'bonus' END, CASE WHEN i %% 3 = 0 THEN -1 ELSE 2 END,
       i, NULL, NULL, 'bench-' || %(user)s || '-' || i, '', NULL
  FROM (SELECT i, now() - (%(n)s - i) * interval '1 second' AS ts FROM generate_series(1, %(n)s) AS i) g
""",
    "balance": """
INSERT INTO credits_creditbalance (id, created_at, updated_at, user_id, balance,
                                   lifetime_spent, lifetime_bonus)
SELECT gen_random_uuid(), now(), now(), %(user)s, COALESCE(sum(amount), 0),
       COALESCE(-sum(amount) FILTER (WHERE type = 'usage'), 0),
       COALESCE(sum(amount) FILTER (WHERE type = 'bonus'), 0)
  FROM credits_credittransaction WHERE user_id = %(user)s
ON CONFLICT (user_id) DO UPDATE SET balance = EXCLUDED.balance, lifetime_spent = EXCLUDED.lifetime_spent,
                                    lifetime_bonus = EXCLUDED.lifetime_bonus
""",
    "jobs": f"""
INSERT INTO jobs_job ({JOB_COLUMNS})
SELECT gen_random_uuid(), ts, ts, %(user)s, %(kind)s, 'bench-' || %(user)s || '-' || i,
       CASE WHEN i %% 10 = 0 THEN 'failed' ELSE 'completed' END, 0, false, '{{}}'::jsonb,
       1, CASE WHEN i %% 10 = 0 THEN 0 ELSE 1 END, CASE WHEN i %% 10 = 0 THEN 1 ELSE 0 END, 100, 1, 3,
       1, CASE WHEN i %% 10 = 0 THEN 1 ELSE 0 END, true, false, '{{}}'::jsonb, '', ts
  FROM (SELECT i, now() - (i %% 730) * interval '1 day' - (i %% 86400) * interval '1 second' AS ts
          FROM generate_series(1, %(n)s) AS i) AS g
""",
    "stock": """
INSERT INTO shops_stockhistory (change, quantity_before, quantity_after, reason, reference, note,
                                created_at, item_id, user_id)
SELECT 1, i - 1, i, 'import', '', '', now() - (%(n)s - i) * interval '1 second', %(item)s, NULL
  FROM generate_series(1, %(n)s) AS i
""",
    "item_stock": "UPDATE shops_item SET stock_quantity = %(n)s WHERE id = %(item)s",
    "orders": """
INSERT INTO shops_formsubmission (id, created_at, updated_at, customer_name, customer_phone, customer_email,
                                  customer_address, customer_extra, note, total, currency, status,
                                  submitted_at, status_changed_at, cancelled_at, form_id,
                                  payment_method_id, shop_id)
SELECT gen_random_uuid(), ts, ts, 'Customer ' || i, '', '', '', '{}'::jsonb, '', 10.00, 'USD', 'new', ts,
       NULL, NULL, NULL, NULL, %(shop)s
  FROM (SELECT i, now() - (%(n)s - i) * interval '1 second' AS ts FROM generate_series(1, %(n)s) AS i) g
""",
    "messages": """
INSERT INTO shops_message (id, created_at, updated_at, direction, sender, text, conversation_id,
                           keyword_reply_id, sent_by_id)
SELECT gen_random_uuid(), ts, ts, 'inbound', 'customer', 'message ' || i, %(conversation)s, NULL, NULL
  FROM (SELECT i, now() - (%(n)s - i) * interval '1 second' AS ts FROM generate_series(1, %(n)s) AS i) g
""",
}

# The floor: what a history-independent implementation reads (large owner, via psycopg).
RAW = {
    "balance": "SELECT balance FROM credits_creditbalance WHERE user_id = %(user)s",
    "users/me": "SELECT * FROM accounts_user WHERE id = %(user)s",
    "stats (one year)": """SELECT sum(jobs) FROM jobs_jobdailystat
                            WHERE user_id = %(user)s AND date BETWEEN %(from)s AND %(to)s""",
    "transactions": """SELECT * FROM credits_credittransaction WHERE user_id = %(user)s
                        ORDER BY created_at DESC, id DESC LIMIT 20""",
    "transactions deep": """SELECT * FROM credits_credittransaction WHERE user_id = %(user)s
                             AND (created_at, id) < (%(ledger_key)s, %(ledger_id)s)
                             ORDER BY created_at DESC, id DESC LIMIT 20""",
    "jobs": "SELECT * FROM jobs_job WHERE user_id = %(user)s ORDER BY created_at DESC, id DESC LIMIT 20",
    "jobs deep": """SELECT * FROM jobs_job WHERE user_id = %(user)s
                     AND (created_at, id) < (%(job_key)s, %(job_id)s)
                     ORDER BY created_at DESC, id DESC LIMIT 20""",
    "stock history": "SELECT * FROM shops_stockhistory WHERE item_id = %(item)s ORDER BY id DESC LIMIT 20",
    "stock history deep": """SELECT * FROM shops_stockhistory WHERE item_id = %(item)s AND id < %(stock_id)s
                              ORDER BY id DESC LIMIT 20""",
    "orders": """SELECT * FROM shops_formsubmission WHERE shop_id = %(shop)s
                  ORDER BY submitted_at DESC, id LIMIT 20""",
    "orders deep": """SELECT * FROM shops_formsubmission WHERE shop_id = %(shop)s
                       AND submitted_at <= %(order_key)s
                       AND (submitted_at < %(order_key)s OR id > %(order_id)s)
                       ORDER BY submitted_at DESC, id LIMIT 20""",
    "messages": """SELECT * FROM shops_message WHERE conversation_id = %(conversation)s
                    ORDER BY created_at, id LIMIT 20""",
    "messages deep": """SELECT * FROM shops_message WHERE conversation_id = %(conversation)s
                         AND (created_at, id) > (%(message_key)s, %(message_id)s)
                         ORDER BY created_at, id LIMIT 20""",
}

# Keyset positions at the deep offset, for the raw deep statements.
KEYS = {
    ("ledger_key", "ledger_id"): """SELECT created_at, id FROM credits_credittransaction
                                     WHERE user_id = %(user)s
                                     ORDER BY created_at DESC, id DESC OFFSET %(offset)s LIMIT 1""",
    ("job_key", "job_id"): """SELECT created_at, id FROM jobs_job WHERE user_id = %(user)s
                               ORDER BY created_at DESC, id DESC OFFSET %(offset)s LIMIT 1""",
    ("stock_id",): """SELECT id FROM shops_stockhistory WHERE item_id = %(item)s
                       ORDER BY id DESC OFFSET %(offset)s LIMIT 1""",
    ("order_key", "order_id"): """SELECT submitted_at, id FROM shops_formsubmission WHERE shop_id = %(shop)s
                        ORDER BY submitted_at DESC, id OFFSET %(offset)s LIMIT 1""",
    ("message_key", "message_id"): """SELECT created_at, id FROM shops_message
                                       WHERE conversation_id = %(conversation)s
                                       ORDER BY created_at, id OFFSET %(offset)s LIMIT 1""",
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--rows", type=int, default=100_000, help="history rows of the large owner, per table"
    )
    parser.add_argument("--small-rows", type=int, default=10)
    parser.add_argument("--requests", type=int, default=100, help="timed GETs per endpoint and owner")
    parser.add_argument("--raw-runs", type=int, default=50)
    parser.add_argument("--deep-offset", type=int, default=None, help="row offset of the deep page (rows/2)")
    parser.add_argument("--only", default="", help="comma-separated endpoint labels to run (default all)")
    args = parser.parse_args()
    configure(DB)
    create_database(DB)
    try:
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(DB)


def make_owner(label: str, n: int, kind_id) -> dict:
    """A user with `n` ledger rows and jobs, a shop with `n` orders, an item with `n` stock-history
    rows and a conversation with `n` messages; returns the ids and the user's JWT."""
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.models import User
    from jobs import services as job_services
    from shops.models import Conversation
    from shops.services import item_create, shop_create

    user = User.objects.create_user(f"history-{label}@example.com", "x")
    shop = shop_create(owner=user, name=f"History {label}")
    item = item_create(shop=shop, sku=f"SKU-{label}", name=f"Item {label}", price="10.00", cost="5.00")
    conversation = Conversation.objects.create(shop=shop, channel="web", customer_handle=f"c-{label}")
    ids = {
        "user": user.pk,
        "shop": shop.pk,
        "item": item.pk,
        "conversation": conversation.pk,
        "kind": kind_id,
        "n": n,
    }
    started = time.perf_counter()
    with connect(DB, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            for statement in ("ledger", "balance", "jobs", "stock", "item_stock", "orders", "messages"):
                conn.execute(LOAD[statement], ids)
    job_services.job_daily_stats_rebuild(user_id=user.pk)
    ids["token"] = str(RefreshToken.for_user(user).access_token)
    print(
        f"{label}: {n:,} rows in each of ledger, jobs, stock history, orders, messages "
        f"({time.perf_counter() - started:.1f}s)",
        flush=True,
    )
    return ids


def endpoints(owner: dict) -> dict:
    today = date.today()
    return {
        "balance": "/api/credits/balance",
        "users/me": "/api/users/me",
        "stats (one year)": f"/api/stats?from={today - timedelta(days=364)}&to={today}",
        "transactions": "/api/credits/transactions",
        "jobs": "/api/jobs",
        "stock history": f"/api/shops/{owner['shop']}/items/{owner['item']}/stock",
        "orders": f"/api/shops/{owner['shop']}/orders",
        "messages": f"/api/shops/{owner['shop']}/conversations/{owner['conversation']}/messages",
    }


# The keyset position (from KEYS) each list's deep cursor starts after.
CURSOR_KEYS = {
    "transactions": ("ledger_key", "ledger_id"),
    "jobs": ("job_key", "job_id"),
    "stock history": ("stock_id",),
    "orders": ("order_key", "order_id"),
    "messages": ("message_key", "message_id"),
}


def deep_url(client, url: str, label: str, params: dict, offset: int) -> tuple[str, str]:
    """The URL of the page starting after row `offset`: when the endpoint pages by keyset (it
    answers `?cursor=` with a cursor `next` link), the cursor of the row at that offset, encoded
    as the server encodes it (walking 500,000 rows of `next` links would take longer than the
    whole measurement); else `?page=N`. Returns (url, how)."""
    from config.pagination import StandardPagination

    sep = "&" if "?" in url else "?"
    first = client.get(f"{url}{sep}cursor=").json()
    if "cursor=" in (first.get("next") or ""):
        token = StandardPagination._encode([params[key] for key in CURSOR_KEYS[label]], False)
        deep = f"{url}{sep}cursor={token}"
        response = client.get(deep)
        assert response.status_code == 200 and len(response.json()["results"]) == 20, response.content[:300]
        return deep, f"cursor after {offset:,}"
    page = offset // 20 + 1
    return f"{url}{sep}page={page}", f"?page={page:,}"


def time_get(client, url: str, requests: int) -> tuple[float, float, dict]:
    for _ in range(5):
        response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"GET {url} answered {response.status_code}: {response.content[:300]!r}")
    samples = []
    for _ in range(requests):
        t0 = time.perf_counter()
        client.get(url)
        samples.append((time.perf_counter() - t0) * 1000)
    p50, p95 = percentiles(samples)
    return p50, p95, response.json()


def time_raw(conn, sql: str, params: dict, runs: int) -> float:
    conn.execute(sql, params).fetchall()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        conn.execute(sql, params).fetchall()
        samples.append((time.perf_counter() - t0) * 1000)
    return percentiles(samples)[1]


def run(args):
    warnings.filterwarnings("ignore", message="No directory at")
    setup_django()
    from rest_framework.test import APIClient

    from jobs.models import JobKind

    kind_id = JobKind.objects.get(code="account_batch").pk
    small = make_owner("small", args.small_rows, kind_id)
    large = make_owner("large", args.rows, kind_id)
    with connect(DB, autocommit=True) as conn:
        # As after any bulk import (and as autovacuum does for insert-only tables): statistics,
        # and the visibility map that lets a count read the index alone.
        conn.execute("VACUUM ANALYZE")
    offset = args.deep_offset if args.deep_offset is not None else args.rows // 2
    only = {label.strip() for label in args.only.split(",") if label.strip()}

    clients = {}
    for name, owner in (("small", small), ("large", large)):
        clients[name] = APIClient()
        clients[name].credentials(HTTP_AUTHORIZATION=f"Bearer {owner['token']}")

    today = date.today()
    params = {**large, "from": today - timedelta(days=364), "to": today, "offset": offset}
    print(
        f"\n{args.requests} requests per cell through DRF's test client; raw = psycopg, "
        f"{args.raw_runs} runs, large owner; deep = offset {offset:,}\n"
    )
    header = (
        f"{'endpoint':<20} {'deep via':<22} | {'small p50':>9} {'small p95':>9} | "
        f"{'large p50':>9} {'large p95':>9} | {'large/small p95':>15} | {'raw p95':>8}"
    )
    print(header)
    print("-" * len(header), flush=True)
    with connect(DB, autocommit=True) as raw:
        for keys, sql in KEYS.items():
            row = raw.execute(sql, params).fetchone()
            params.update(dict(zip(keys, row, strict=True)))
        small_urls, large_urls = endpoints(small), endpoints(large)
        for label, large_url in large_urls.items():
            is_list = f"{label} deep" in RAW
            cells = [(label, "", small_urls[label], large_url, RAW[label])]
            if is_list:
                deep, how = deep_url(clients["large"], large_url, label, params, offset)
                cells.append((f"{label} deep", how, small_urls[label], deep, RAW[f"{label} deep"]))
            for cell_label, how, s_url, l_url, raw_sql in cells:
                if only and label not in only and cell_label not in only:
                    continue
                s50, s95, _ = time_get(clients["small"], s_url, args.requests)
                l50, l95, body = time_get(clients["large"], l_url, args.requests)
                raw95 = time_raw(raw, raw_sql, params, args.raw_runs)
                print(
                    f"{cell_label:<20} {how:<22} | {s50:>7.2f}ms {s95:>7.2f}ms | "
                    f"{l50:>7.2f}ms {l95:>7.2f}ms | {l95 / s95:>14.1f}x | {raw95:>6.2f}ms",
                    flush=True,
                )
                if cell_label == "balance":
                    expected = raw.execute(RAW["balance"], params).fetchone()[0]
                    assert body["balance"] == expected, (body, expected)
                if is_list and cell_label == label and "count" in body:
                    print(f"{'':<20} {'(count in page 1)':<22} | large count = {body['count']:,}")


if __name__ == "__main__":
    main()
