"""Charges per second through `credits.services.credits_charge` vs. raw SQL through psycopg.

    .venv/bin/python bench/credits_charge.py [--seconds 3] [--users 1000]

Creates its own database `bench_credits_charge` (dropped at the end), migrates it, gives one
"hot" user and 1,000 other users a large balance, then for 1, 8 and 32 concurrent workers
(threads, one database connection each) charges 1 credit per call for a fixed time:

- service: `credits_charge(user=..., amount=1, idempotency_key=...)` — lock the balance row,
  insert the ledger row, update the balance, one transaction;
- raw:     the same three statements in one transaction through psycopg directly, against the
  same tables (same constraints, indexes and append-only trigger).

- raw 1-stmt: the service's own single statement (conditional UPDATE ... RETURNING feeding the
  INSERT) sent through psycopg in autocommit, so the cost of Django itself is visible too.

"hot" sends every charge to one user (all workers contend for one row lock); "spread" picks
one of 1,000 users at random per charge. Prints charges/s and the ratios; the target is service >= 50% of
raw (the three-statement baseline) on the hot user.
"""

import argparse
import random
import time
import uuid
from datetime import UTC, datetime

from harness import close_django_connections, configure, connect, create_database, drop_database, setup_django
from harness import run_threads as run

BENCH_DB = "bench_credits_charge"
configure(BENCH_DB)

WORKER_COUNTS = (1, 8, 32)
START_BALANCE = 1_000_000_000

RAW_LOCK = "SELECT id, balance FROM credits_creditbalance WHERE user_id = %s FOR UPDATE"
RAW_INSERT = (
    "INSERT INTO credits_credittransaction (id, created_at, updated_at, user_id, type, amount, "
    "balance_after, job_id, payment_id, idempotency_key, reason, created_by_id) "
    "VALUES (%s, now(), now(), %s, 'usage', %s, %s, NULL, NULL, %s, '', NULL)"
)
RAW_UPDATE = (
    "UPDATE credits_creditbalance SET balance = %s, lifetime_spent = lifetime_spent + 1, updated_at = now() "
    "WHERE id = %s"
)


def setup_django_and_data(n_users: int):
    create_database(BENCH_DB)
    setup_django()

    from accounts.models import User
    from credits.services import credits_grant

    users = User.objects.bulk_create(
        [User(email=f"bench{i}@example.com", password="!") for i in range(n_users + 1)]
    )
    for u in users:
        credits_grant(user=u, amount=START_BALANCE, idempotency_key=f"bench:seed:{u.pk}")
    return users[0], users[1:]


def service_worker(users, stop_at, counter, index):
    from django.db import connection

    from credits.services import credits_charge

    done = 0
    prefix = f"svc:{uuid.uuid4().hex}:"
    pick = random.Random(index)
    try:
        while time.perf_counter() < stop_at:
            user = users[0] if len(users) == 1 else pick.choice(users)
            credits_charge(user=user, amount=1, idempotency_key=f"{prefix}{done}")
            done += 1
    finally:
        connection.close()
    counter[index] = done


def raw_worker(user_ids, stop_at, counter, index):
    done = 0
    prefix = f"raw:{uuid.uuid4().hex}:"
    pick = random.Random(index)
    with connect(BENCH_DB) as conn:
        while time.perf_counter() < stop_at:
            user_id = user_ids[0] if len(user_ids) == 1 else pick.choice(user_ids)
            with conn.transaction():
                balance_id, balance = conn.execute(RAW_LOCK, [user_id]).fetchone()
                conn.execute(RAW_INSERT, [uuid.uuid4(), user_id, -1, balance - 1, f"{prefix}{done}"])
                conn.execute(RAW_UPDATE, [balance - 1, balance_id])
            done += 1
    counter[index] = done


def raw_one_statement_worker(user_ids, stop_at, counter, index):
    from credits.services.ledger import ONE_STATEMENT_SQL

    sql = ONE_STATEMENT_SQL.format(
        balance="credits_creditbalance", ledger="credits_credittransaction", counter="lifetime_spent"
    )
    done = 0
    prefix = f"raw1:{uuid.uuid4().hex}:"
    pick = random.Random(index)
    with connect(BENCH_DB, autocommit=True) as conn:
        while time.perf_counter() < stop_at:
            user_id = user_ids[0] if len(user_ids) == 1 else pick.choice(user_ids)
            now = datetime.now(UTC)
            params = {
                "id": uuid.uuid4(),
                "now": now,
                "user_id": user_id,
                "type": "usage",
                "amount": -1,
                "counter_delta": 1,
                "job_id": None,
                "payment_id": None,
                "key": f"{prefix}{done}",
                "reason": "",
                "created_by_id": None,
            }
            row = conn.execute(sql, params).fetchone()
            assert row is not None
            done += 1
    counter[index] = done


def audit_ok() -> bool:
    from credits.selectors import credits_audit

    return not credits_audit()


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.5, help="measuring time per cell (default 2.5)")
    parser.add_argument("--users", type=int, default=1000, help="users in the spread scenario (default 1000)")
    args = parser.parse_args()
    try:
        hot, spread = setup_django_and_data(args.users)
        scenarios = {"hot (1 user)": [hot], f"spread ({len(spread)} users)": spread}
        print(f"credits_charge benchmark: {args.seconds:g} s per cell, threads, one connection each")
        print(
            f"{'scenario':<22}{'workers':>8}{'service/s':>11}{'raw SQL/s':>11}{'ratio':>7}"
            f"{'raw 1-stmt/s':>14}{'ratio':>7}"
        )
        results = {}
        for name, users in scenarios.items():
            user_ids = [u.pk for u in users]
            for workers in WORKER_COUNTS:
                service = run(service_worker, users, workers, args.seconds)
                raw = run(raw_worker, user_ids, workers, args.seconds)
                raw_one = run(raw_one_statement_worker, user_ids, workers, args.seconds)
                results[(name, workers)] = (service, raw)
                print(
                    f"{name:<22}{workers:>8}{service:>11.0f}{raw:>11.0f}{service / raw:>7.0%}"
                    f"{raw_one:>14.0f}{service / raw_one:>7.0%}",
                    flush=True,
                )
        hot_ratios = [s / r for (name, _), (s, r) in results.items() if name.startswith("hot")]
        print(f"hot-user ratio service/raw: min {min(hot_ratios):.0%} (target >= 50%)")
        print(f"ledger audit after the run: {'OK' if audit_ok() else 'MISMATCH'}")
    finally:
        close_django_connections()
        drop_database(BENCH_DB)


if __name__ == "__main__":
    main()
