"""The request path's floor: throughput of a few endpoints through gunicorn vs /healthz and raw SQL.

    .venv/bin/python bench/api_floor.py [--seconds 5] [--clients 8] [--port 8766] [--web-workers 4]
                                        [--profile-requests 500]

Creates its own database `bench_api_floor` (dropped at the end), gives `--clients` users a large
balance and starts a real gunicorn (`--web-workers` sync workers, DEBUG off) on a loopback port.
Then, one endpoint after the other, `--clients` threads each with its own keep-alive HTTP
connection and its own user's JWT send requests for `--seconds` (after a 1 s warm-up):

- GET /healthz (no auth, no database: the WSGI + middleware floor);
- GET /api/credits/balance and GET /api/users/me (JWT auth, throttles, a read);
- POST /api/jobs {"kind": "account_batch", "requested_count": 1} (JWT auth, throttles,
  validation, the job row and its 1-credit charge).

Raw-SQL baseline in the same run: `--clients` psycopg threads, one connection each, sending the
statements each endpoint's work needs (balance: the user row, the balance row and the ledger
aggregate the selector runs; me: the user row, the profile join and its subscriptions; jobs:
lock balance, ledger row, balance, job row in one transaction). Prints req/s, % of /healthz and % of raw.

Then the same four endpoints in-process (Django's test client, same settings, throttles on, no
profiler): `--profile-requests` requests each, five interleaved rounds, the fastest kept, as
wall and CPU ms/request and as a ratio to /healthz (the CPU column is the one a busy machine
moves least).

Last, a cProfile of `--profile-requests` authenticated GET /api/credits/balance and as many
POST /api/jobs in-process grouped by where the time goes, then the top functions by own time.
"""

import argparse
import cProfile
import http.client
import io
import json
import os
import pstats
import signal
import threading
import time
import uuid
import warnings

from harness import configure, connect, create_database, drop_database, start_gunicorn

DB = "bench_api_floor"

RAW_USER = "SELECT * FROM accounts_user WHERE id = %s"
RAW_PROFILE = (
    "SELECT * FROM accounts_user u LEFT JOIN accounts_license l ON l.user_id = u.id "
    "LEFT JOIN accounts_userpreferences p ON p.user_id = u.id "
    "LEFT JOIN credits_creditbalance b ON b.user_id = u.id WHERE u.id = %s"
)
RAW_SUBSCRIPTIONS = "SELECT * FROM accounts_subscription WHERE user_id = %s"
RAW_BALANCE_READ = "SELECT balance FROM credits_creditbalance WHERE user_id = %s"
RAW_LEDGER_SUM = (
    "SELECT COALESCE(sum(amount) FILTER (WHERE type = 'purchase'), 0), "
    "COALESCE(sum(amount) FILTER (WHERE type = 'usage'), 0), "
    "COALESCE(sum(amount) FILTER (WHERE type = 'refund'), 0), "
    "COALESCE(sum(amount) FILTER (WHERE type = 'bonus'), 0), "
    "COALESCE(sum(amount) FILTER (WHERE type = 'adjustment'), 0) "
    "FROM credits_credittransaction WHERE user_id = %s"
)
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
RAW_AUTHORISE = "SELECT set_config('jobs.transition', %s, true)"
RAW_JOB = (
    "INSERT INTO jobs_job (id, created_at, updated_at, user_id, kind_id, external_id, status, "
    "priority, runs_on_engine, params, requested_count, successful_count, failed_count, progress, "
    "attempts, max_retries, credits_charged, credits_refunded, charged, holds_model_slot, result, "
    "error, queued_at) VALUES (%s, now(), now(), %s, %s, %s, 'queued', 0, false, '{}', 1, 0, 0, 0, "
    "0, 3, 1, 0, true, false, '{}', '', now())"
)

# Where the time of one authenticated GET goes: cumulative time of these frames, the outermost
# matching frame of each (they nest, so the rows do not add up; "request total" is the test
# client's whole call).
PROFILE_GROUPS = [
    ("request total", "django/test/client.py", "request"),
    ("middleware + view (WSGI handler)", "django/core/handlers/base.py", "get_response"),
    ("authentication (DRF perform_authentication)", "rest_framework/views.py", "perform_authentication"),
    ("  of which JWT decode/validate", "rest_framework_simplejwt/authentication.py", "get_validated_token"),
    ("  of which user lookup (get_user)", "accounts/authentication.py", "get_user"),
    ("throttles (all classes)", "rest_framework/views.py", "check_throttles"),
    ("  of which the raw client (get_redis_connection)", "django_redis/__init__.py", "get_redis_connection"),
    ("  of which one-round-trip script (Redis)", "config/cache.py", "__call__"),
    ("view handler GET (selector + serializer)", "credits/apis.py", "get"),
    ("view handler POST /api/jobs", "jobs/apis.py", "post"),
    ("  of which job_create (service)", "jobs/services/lifecycle.py", "job_create"),
    ("  of which the credit charge", "credits/services/ledger.py", "_ledger_write"),
    ("  of which transaction.atomic exit (COMMIT)", "django/db/transaction.py", "__exit__"),
    (
        "  of which on_commit callbacks (wakeup etc.)",
        "django/db/backends/base/base.py",
        "run_and_clear_commit_hooks",
    ),
    ("serializer validation (is_valid)", "rest_framework/serializers.py", "is_valid"),
    ("ORM SQL compilation (as_sql)", "django/db/models/sql/compiler.py", "as_sql"),
    ("DB round trips (cursor._execute)", "django/db/backends/utils.py", "_execute"),
    ("response rendering", "rest_framework/response.py", "rendered_content"),
]


def run_for(seconds: float, clients: int, work) -> float:
    """Run `work(i, stop)` in `clients` threads for `seconds`; returns operations per second."""
    stop = threading.Event()
    counts = [0] * clients
    barrier = threading.Barrier(clients + 1)

    def target(i):
        barrier.wait()
        counts[i] = work(i, stop)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - started)


def http_work(port: int, method: str, path: str, tokens: list[str] | None, body: str | None, status: int):
    def work(i, stop):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if tokens:
            headers["Authorization"] = f"Bearer {tokens[i]}"
        done = 0
        while not stop.is_set():
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            content = response.read()
            if response.status != status:
                raise SystemExit(f"{method} {path}: unexpected {response.status} {content[:200]!r}")
            done += 1
        conn.close()
        return done

    return work


def raw_read_work(user_ids: list, statements: list[str]):
    def work(i, stop):
        done = 0
        with connect(DB, autocommit=True) as conn:
            while not stop.is_set():
                for statement in statements:
                    conn.execute(statement, [user_ids[i]]).fetchall()
                done += 1
        return done

    return work


def raw_job_work(user_ids: list, kind_id):
    def work(i, stop):
        done = 0
        with connect(DB, autocommit=True) as conn:
            while not stop.is_set():
                job_id = uuid.uuid4()
                with conn.transaction():
                    balance_id, balance = conn.execute(RAW_LOCK, [user_ids[i]]).fetchone()
                    conn.execute(
                        RAW_LEDGER, [uuid.uuid4(), user_ids[i], balance - 1, job_id, f"job:{job_id}:charge"]
                    )
                    conn.execute(RAW_BALANCE, [balance - 1, balance_id])
                    conn.execute(RAW_AUTHORISE, [str(job_id)])  # the status guard trigger's pass
                    conn.execute(RAW_JOB, [job_id, user_ids[i], kind_id, job_id.hex])
                done += 1
        return done

    return work


def profile_endpoint(
    token: str, requests: int, method: str, path: str, body: str | None, status: int
) -> None:
    from django.test import Client

    warnings.filterwarnings("ignore", message="No directory at")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def send():
        if method == "GET":
            return client.get(path)
        return client.post(path, body, content_type="application/json")

    for _ in range(20):
        assert send().status_code == status
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(requests):
        send()
    profiler.disable()
    per_request = (time.perf_counter() - started) * 1000 / requests
    stats = pstats.Stats(profiler)
    print(
        f"\ncProfile: {requests} in-process {method} {path}, {per_request:.2f} ms each under "
        "the profiler (cumulative ms per request; groups nest; rows at 0 did not run)"
    )
    print(f"{'where':<44} | {'ms/request':>10} | {'calls/request':>13}")
    for label, file_part, function in PROFILE_GROUPS:
        cumulative, calls = 0.0, 0
        for (filename, _line, name), (_cc, nc, _tt, ct, _callers) in stats.stats.items():
            if name == function and filename.replace(os.sep, "/").endswith(file_part) and ct > cumulative:
                cumulative, calls = ct, nc
        print(f"{label:<44} | {cumulative * 1000 / requests:>10.3f} | {calls / requests:>13.1f}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
    print("\nTop 20 functions by own time (all requests): ncalls tottime percall cumtime percall where")
    print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))


def time_in_process(tokens: list[str], requests: int, cells: list[tuple]) -> None:
    """Each cell in-process (Django's test client, no profiler, no gunicorn): `requests` requests
    per round, 5 rounds with the cells interleaved, the fastest round kept, as wall time and as
    this process's CPU time (time.process_time: what a busy machine inflates least; the
    database's own work is not in it)."""
    from django.test import Client

    clients = [Client(HTTP_AUTHORIZATION=f"Bearer {token}") for token in tokens]
    wall = {label: float("inf") for label, *_ in cells}
    cpu = dict(wall)
    for _ in range(5):
        for i, (label, method, path, body, status) in enumerate(cells):
            client = clients[i % len(clients)]
            send = (
                (lambda c=client, p=path: c.get(p))
                if method == "GET"
                else (lambda c=client, p=path, b=body: c.post(p, b, content_type="application/json"))
            )
            assert send().status_code == status, label
            started, started_cpu = time.perf_counter(), time.process_time()
            for _ in range(requests):
                send()
            wall[label] = min(wall[label], (time.perf_counter() - started) * 1000 / requests)
            cpu[label] = min(cpu[label], (time.process_time() - started_cpu) * 1000 / requests)
    first = cells[0][0]
    print(f"\nIn-process (test client, no profiler), {requests} requests x 5 rounds, fastest round:")
    print(f"{'endpoint':<26} | {'wall ms':>8} | {'% of healthz':>12} | {'CPU ms':>7} | {'% of healthz':>12}")
    for label, *_ in cells:
        print(
            f"{label:<26} | {wall[label]:>8.3f} | {wall[first] / wall[label]:>12.0%} | "
            f"{cpu[label]:>7.3f} | {cpu[first] / cpu[label]:>12.0%}"
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--profile-requests", type=int, default=500)
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

        users = [User.objects.create_user(f"floor-bench{i}@example.com", "x") for i in range(args.clients)]
        for user in users:
            credits_grant(user=user, amount=10_000_000, idempotency_key=f"bench:{user.pk}")
        tokens = [str(RefreshToken.for_user(user).access_token) for user in users]
        user_ids = [u.pk for u in users]
        kind_id = JobKind.objects.get(code="account_batch").pk
        from django.db import connections

        connections.close_all()
        server = start_gunicorn(port=args.port, workers=args.web_workers, env=env)

        job_body = json.dumps({"kind": "account_batch", "requested_count": 1})
        scenarios = [
            ("GET /healthz", http_work(args.port, "GET", "/healthz", None, None, 200), None),
            (
                "GET /api/credits/balance",
                http_work(args.port, "GET", "/api/credits/balance", tokens, None, 200),
                raw_read_work(user_ids, [RAW_USER, RAW_BALANCE_READ, RAW_LEDGER_SUM]),
            ),
            (
                "GET /api/users/me",
                http_work(args.port, "GET", "/api/users/me", tokens, None, 200),
                raw_read_work(user_ids, [RAW_USER, RAW_PROFILE, RAW_SUBSCRIPTIONS]),
            ),
            (
                "POST /api/jobs",
                http_work(args.port, "POST", "/api/jobs", tokens, job_body, 201),
                raw_job_work(user_ids, kind_id),
            ),
        ]
        print(
            f"{args.clients} keep-alive clients, {args.seconds:.0f}s per cell, gunicorn with "
            f"{args.web_workers} sync workers; raw = {args.clients} psycopg threads\n"
        )
        print(
            f"{'endpoint':<26} | {'req/s':>7} | {'% of healthz':>12} | {'raw SQL/s':>9} | {'% of raw':>8}",
            flush=True,
        )
        healthz = None
        for label, work, raw in scenarios:
            run_for(1, args.clients, work)  # warm-up: connections, imports
            rate = run_for(args.seconds, args.clients, work)
            healthz = healthz or rate
            raw_rate = run_for(args.seconds, args.clients, raw) if raw else None
            raw_cells = f"{raw_rate:>9.0f} | {rate / raw_rate:>8.0%}" if raw_rate else f"{'':>9} | {'':>8}"
            print(f"{label:<26} | {rate:>7.0f} | {rate / healthz:>12.0%} | {raw_cells}", flush=True)
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        server = None
        time_in_process(
            tokens,
            args.profile_requests,
            [
                ("GET /healthz", "GET", "/healthz", None, 200),
                ("GET /api/credits/balance", "GET", "/api/credits/balance", None, 200),
                ("GET /api/users/me", "GET", "/api/users/me", None, 200),
                ("POST /api/jobs", "POST", "/api/jobs", job_body, 201),
            ],
        )
        profile_endpoint(tokens[0], args.profile_requests, "GET", "/api/credits/balance", None, 200)
        profile_endpoint(tokens[1], args.profile_requests, "POST", "/api/jobs", job_body, 201)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        drop_database(DB)


if __name__ == "__main__":
    main()
