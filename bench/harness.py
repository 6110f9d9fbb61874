"""Shared set-up for every benchmark: a private database, Django pointed at it, timing helpers.

Importing this module sets the environment (before Django is imported): DATABASE_URL → the
benchmark's own database, DEBUG off, a Redis database for the broker/cache that nobody else uses
by default (BENCH_REDIS_URL, default redis://127.0.0.1:6379/13), throttles out of the way.
"""

import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import environ  # noqa: E402

environ.Env.read_env(ROOT / ".env", overwrite=False)
_BASE = environ.Env.db_url_config(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/saas"))
CONN_KW = {
    "host": _BASE["HOST"] or "127.0.0.1",
    "port": _BASE["PORT"] or 5432,
    "user": _BASE["USER"] or "postgres",
    "password": _BASE["PASSWORD"] or None,
}
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def configure(db_name: str) -> dict:
    """Point this process (and the subprocesses it starts) at `db_name`; returns the env."""
    auth = CONN_KW["user"] + (f":{CONN_KW['password']}" if CONN_KW["password"] else "")
    env = {
        "DATABASE_URL": f"postgres://{auth}@{CONN_KW['host']}:{CONN_KW['port']}/{db_name}",
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "CONN_MAX_AGE": "600",
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "CACHE_KEY_PREFIX": f"bench-{db_name}",
        "THROTTLE_USER": "100000000/min",
        "THROTTLE_ANON": "100000000/min",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    return {**os.environ, **env}


def admin_execute(statement: str) -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, **CONN_KW) as conn:
        conn.execute(statement)


def create_database(db_name: str) -> None:
    drop_database(db_name)
    admin_execute(f'CREATE DATABASE "{db_name}"')


def drop_database(db_name: str) -> None:
    admin_execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def connect(db_name: str, **kwargs) -> psycopg.Connection:
    return psycopg.connect(dbname=db_name, **CONN_KW, **kwargs)


def setup_django():
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * len(ordered))) - 1)]
    return statistics.median(ordered), p95


def run_threads(worker, ctx, workers: int, seconds: float) -> float:
    """Run `worker(ctx, stop_at, counter, index)` in `workers` threads for `seconds`; returns the
    operations per second they counted in total."""
    counter = [0] * workers
    start = time.perf_counter()
    stop_at = start + seconds
    threads = [threading.Thread(target=worker, args=(ctx, stop_at, counter, i)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counter) / (time.perf_counter() - start)


def close_django_connections() -> None:
    try:
        from django.db import connections

        connections.close_all()
    except Exception as exc:  # Django may not be set up if creating the database failed
        print(f"(closing connections: {exc})")


def start_gunicorn(*, port: int, workers: int, env: dict) -> subprocess.Popen:
    """A real gunicorn (sync workers) on a loopback port, returned once /healthz answers 200."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            probe.request("GET", "/healthz")
            if probe.getresponse().status == 200:
                return server
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("gunicorn did not start") from None
            time.sleep(0.2)
