"""Job creation with its credit charge through the API, 8 concurrent clients, vs raw SQL.

    .venv/bin/python bench/jobs_create.py [--seconds 5] [--port 8765] [--web-workers 4]

Creates its own database `bench_jobs_create` (dropped at the end), migrates it, gives 8 users
a large balance, and starts a real gunicorn (`--web-workers` sync workers) on a loopback port.
Then 8 client threads, each with its own keep-alive HTTP connection and its own user's JWT,
POST /api/jobs {"kind": "account_batch", "requested_count": 1} for `--seconds`:
the full path — JSON parsing, JWT auth, validation, the job row, the pre_save signal charging
1 credit (balance row lock, ledger row, balance update), the deferred rollup trigger, the
response serialization. "hot" sends all 8 clients' jobs for one user (one balance row lock).

Baseline in the same run: 8 threads doing the same writes with psycopg in one transaction
each (lock the balance, insert the ledger row, update the balance, insert the job row).
Prints jobs/s for both and the ratio.
"""

import argparse
import http.client
import json
import os
import signal
import threading
import time
import uuid

from harness import configure, connect, create_database, drop_database, start_gunicorn

DB = "bench_jobs_create"
CLIENTS = 8

RAW_AUTHORISE = "SELECT set_config('jobs.transition', %s, true)"
RAW_LOCK = "SELECT id, balance FROM credits_creditbalance WHERE user_id = %s FOR UPDATE"
RAW_LEDGER = (
    "INSERT INTO credits_credittransaction (id, created_at, updated_at, user_id, type, amount, "
    "balance_after, job_id, payment_id, idempotency_key, reason, created_by_id) "
    "VALUES (%s, now(), now(), %s, 'usage', -1, %s, %s, NULL, %s, '', NULL)"
)
RAW_BALANCE = (
    "UPDATE credits_creditbalance SET balance = %s, lifetime_spent = lifetime_spent + 1, updated_at = now() "
    "WHERE id = %s"
)
RAW_JOB = (
    "INSERT INTO jobs_job (id, created_at, updated_at, user_id, kind_id, external_id, status, "
    "priority, runs_on_engine, params, requested_count, successful_count, failed_count, progress, "
    "attempts, max_retries, credits_charged, credits_refunded, charged, holds_model_slot, result, "
    "error, queued_at) VALUES (%s, now(), now(), %s, %s, %s, 'queued', 0, false, '{}', 1, 0, 0, 0, "
    "0, 3, 1, 0, true, false, '{}', '', now())"
)


def run_for(seconds: float, work) -> int:
    """Run `work(i, stop)` in CLIENTS threads for `seconds`; returns the total count."""
    stop = threading.Event()
    counts = [0] * CLIENTS
    barrier = threading.Barrier(CLIENTS + 1)

    def target(i):
        barrier.wait()
        counts[i] = work(i, stop)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - started)


def api_work(port: int, tokens: list[str]):
    body = json.dumps({"kind": "account_batch", "requested_count": 1})

    def work(i, stop):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {tokens[i]}"}
        done = 0
        while not stop.is_set():
            conn.request("POST", "/api/jobs", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 201:
                raise SystemExit(f"unexpected {response.status}")
            done += 1
        conn.close()
        return done

    return work


def raw_work(user_ids: list, kind_id):
    def work(i, stop):
        done = 0
        with connect(DB, autocommit=True) as conn:
            while not stop.is_set():
                job_id = uuid.uuid4()
                with conn.transaction():
                    # the same authorisation job_transition sends (status guard, migration 0008)
                    conn.execute(RAW_AUTHORISE, [str(job_id)])
                    balance_id, balance = conn.execute(RAW_LOCK, [user_ids[i]]).fetchone()
                    conn.execute(
                        RAW_LEDGER, [uuid.uuid4(), user_ids[i], balance - 1, job_id, f"job:{job_id}:charge"]
                    )
                    conn.execute(RAW_BALANCE, [balance - 1, balance_id])
                    conn.execute(RAW_JOB, [job_id, user_ids[i], kind_id, job_id.hex])
                done += 1
        return done

    return work


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--web-workers", type=int, default=4)
    args = parser.parse_args()
    env = configure(DB)
    create_database(DB)
    server = None
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from rest_framework_simplejwt.tokens import RefreshToken

        from accounts.models import User
        from credits.services import credits_grant
        from jobs.models import JobKind

        users = [User.objects.create_user(f"create-bench{i}@example.com", "x") for i in range(CLIENTS)]
        for user in users:
            credits_grant(user=user, amount=10_000_000, idempotency_key=f"bench:{user.pk}")
        tokens = [str(RefreshToken.for_user(user).access_token) for user in users]
        kind_id = JobKind.objects.get(code="account_batch").pk
        from django.db import connections

        connections.close_all()

        server = start_gunicorn(port=args.port, workers=args.web_workers, env=env)

        user_ids = [u.pk for u in users]
        print(
            f"{CLIENTS} concurrent clients, {args.seconds:.0f}s each, gunicorn with {args.web_workers} "
            "sync workers\n"
        )
        print(f"{'users':<22} | {'API jobs/s':>10} | {'raw SQL jobs/s':>14} | API / raw", flush=True)
        scenarios = [
            ("8 users (spread)", tokens, user_ids),
            ("1 user (hot balance)", [tokens[0]] * CLIENTS, [user_ids[0]] * CLIENTS),
        ]
        for label, token_list, ids in scenarios:
            run_for(1, api_work(args.port, token_list))  # warm-up: connections, imports
            api_rate = run_for(args.seconds, api_work(args.port, token_list))
            raw_rate = run_for(args.seconds, raw_work(ids, kind_id))
            print(
                f"{label:<22} | {api_rate:>10.0f} | {raw_rate:>14.0f} | {api_rate / raw_rate:>8.0%}",
                flush=True,
            )
        with connect(DB, autocommit=True) as conn:
            bad = conn.execute(
                "SELECT count(*) FROM credits_creditbalance b WHERE b.balance <> (SELECT sum(amount) "
                "FROM credits_credittransaction t WHERE t.user_id = b.user_id)"
            ).fetchone()[0]
        print(f"\nbalances equal to SUM(ledger) after the run: {'yes' if bad == 0 else f'NO ({bad})'}")
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        drop_database(DB)


if __name__ == "__main__":
    main()
