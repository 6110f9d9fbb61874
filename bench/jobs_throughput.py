"""Jobs claimed and completed per second by two Celery worker processes, no-op processor.

    .venv/bin/python bench/jobs_throughput.py [--jobs 4000] [--batches 1,8] [--rounds 1] [--cpu-hog N]
        [--prepared]

Creates its own database `bench_jobs_throughput` (dropped at the end) and uses the Redis
database BENCH_REDIS_URL (default db 13) as the broker. For each claim batch size, inserts
`--jobs` queued jobs with one set-based INSERT, starts two real `celery -A config worker -P solo`
processes (each claims up to <batch> jobs per round trip with FOR UPDATE SKIP LOCKED, starts
and runs each on its own, and completes the batch's jobs in one lease-checked statement at its
end, exactly as in production), sends one wake-up per worker and waits until every job is
completed. Each run's rate, engine and baseline alike, is read from the jobs' own timestamps:
jobs / (last completion - first start), so process start-up and exit, message delivery and the
bench's own polling (a scan, four times a second) stay outside it. A last pair of rows runs the
workers with the default adaptive claim sizes (engine.claim_size, up to JOBS_CLAIM_BATCH_MAX),
the second of them with the job-finished email every user gets by default (the other rows'
bench user has opted out: the raw baseline sends no email).

Baseline in the same run: two plain processes doing the same claim / start / batched complete
SQL (the engine's own statements) through psycopg, no Django, no Celery, preparing their
statements only with `--prepared`, as the workers do. Target (issue 14): >= 500 jobs/s.

`--rounds N` runs each row N times, the engine and its raw baseline alternating (engine, raw,
engine, raw, ...), prints every pair and then the median of each column and of the pairs'
ratios: on a two-core machine one run of a few seconds varies by ±20% with whatever else the
machine does for a moment, and alternating spreads such moments over both sides.

`--cpu-hog N` runs N processes burning CPU beside everything else for the whole run (a busy
machine: the fixed-batch and adaptive rows should then stay together, issue 19), and skips the
email row. `--prepared` runs the workers with DATABASE_PREPARED_STATEMENTS=true (the engine's
statements prepared on its own alias); the default is the production default, off.
"""

import argparse
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime

from harness import ROOT, configure, connect, create_database, drop_database

DB = "bench_jobs_throughput"

# Queued jobs inserted set-based, each authorised to the status guard (jobs migration 0012) by
# id in the same statement, as the engine's own statements do: the guard has no wildcard.
INSERT_SQL = """
WITH ids AS MATERIALIZED (
    SELECT gen_random_uuid() AS id, i FROM generate_series(%(first)s::int, %(last)s::int) AS i),
auth AS MATERIALIZED (
    SELECT set_config('jobs.transition', string_agg(id::text, ','), true) AS granted FROM ids)
INSERT INTO jobs_job (id, created_at, updated_at, user_id, kind_id, external_id, status, priority,
    runs_on_engine, params, requested_count, successful_count, failed_count, progress, attempts, max_retries,
    credits_charged, credits_refunded, charged, holds_model_slot, result, error, queued_at)
SELECT ids.id, now(), now(), %(user)s, %(kind)s, %(prefix)s || i, 'queued', i %% 3, true,
       '{}'::jsonb, 1, 0, 0, 0, 0, 0, 0, 0, true, false, '{}'::jsonb, '', clock_timestamp()
  FROM ids, auth
"""
INSERT_CHUNK = 500
POLL_SECONDS = 0.25


def count_left(prefix: str) -> int:
    with connect(DB, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM jobs_job WHERE external_id LIKE %s AND status <> 'completed'",
            [prefix + "%"],
        ).fetchone()[0]


def insert_jobs(user_id, kind_id, prefix: str, n: int) -> None:
    with connect(DB, autocommit=True) as conn:
        for first in range(1, n + 1, INSERT_CHUNK):
            last = min(n, first + INSERT_CHUNK - 1)
            conn.execute(
                INSERT_SQL, {"user": user_id, "kind": kind_id, "prefix": prefix, "first": first, "last": last}
            )
        conn.execute("VACUUM ANALYZE jobs_job")  # each run starts from a table without dead rows


def wait_done(prefix: str, timeout: float = 600) -> None:
    """Return once every job of the run is completed. Polled four times a second: each poll is a
    new connection and a scan of jobs_job, about 7.6 ms of CPU; polling every 20 ms (as this
    bench once did, during the engine's runs only) took about 0.3 of the machine's two cores
    from the engine it measured."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count_left(prefix) == 0:
            return
        time.sleep(POLL_SECONDS)
    raise SystemExit(f"jobs {prefix}* did not complete within {timeout}s")


def measured_rate(prefix: str, n: int) -> float:
    """Jobs per second of the run, both sides measured alike by the database's own clock: from
    the first job's start (`started_at`) to the last completion (`updated_at`, the completing
    statement's time), so neither the poll's granularity nor process start-up and exit count."""
    with connect(DB, autocommit=True) as conn:
        span = conn.execute(
            "SELECT extract(epoch FROM max(updated_at) - min(started_at)) FROM jobs_job"
            " WHERE external_id LIKE %s",
            [prefix + "%"],
        ).fetchone()[0]
    return n / float(span)


def run_celery(env, user_id, kind_id, n: int, batch: int | None, label: str = "") -> float:
    """`batch`: a fixed claim size (JOBS_CLAIM_BATCH = JOBS_CLAIM_BATCH_MAX), or None for the
    settings' adaptive sizes (engine.claim_size)."""
    from config.celery import app
    from jobs.tasks import run_queue

    prefix = f"celery{label}-b{batch or 'adaptive'}-"
    insert_jobs(user_id, kind_id, prefix, n)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("jobs")
    worker_env = {
        **env,
        "JOBS_DRAIN_SECONDS": "600",
        "JOBS_EXTRA_PROCESSOR_MODULES": "jobs_noop",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)]),
    }
    if batch is not None:
        worker_env |= {"JOBS_CLAIM_BATCH": str(batch), "JOBS_CLAIM_BATCH_MAX": str(batch)}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-P",
                "solo",
                "-Q",
                "jobs",
                "-n",
                f"bench{i}@%h",
                "--loglevel",
                "WARNING",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=worker_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(app.control.ping(timeout=0.5) or []) < 2:
            if time.monotonic() > deadline:
                raise SystemExit("the two workers did not come up")
        for _ in workers:
            run_queue.apply_async(queue="jobs")
        wait_done(prefix)
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return measured_rate(prefix, n)


def burn_cpu(stop) -> None:
    """A spawned process keeping one core busy until `stop` is set."""
    while not stop.is_set():
        x = 0
        for i in range(200_000):
            x += i


def raw_worker(batch: int, go, statements: dict, prepared: bool) -> None:
    """A spawned process (not forked: the parent has Celery/kombu threads) with no Django.

    Per claimed batch, as the engine does: the claim, each job's start (its lease checked, the
    job and kind returned), then one statement completing the whole batch, each job at its own
    finish time and under its own lease check (COMPLETE_BATCH_SQL, returning what the finish
    email needs, which it does not send: the bench user has opted out).

    It prepares its statements exactly when the workers do (`--prepared`): psycopg's own default
    would prepare them after five runs, which the engine may not do behind a transaction-mode
    pooler, so the baseline would then measure PostgreSQL's planning instead of our overhead."""
    go.wait()
    requested = statements["requested_count_index"]
    with connect(DB, autocommit=True, prepare_threshold=0 if prepared else None) as conn:
        while True:
            with conn.transaction():
                rows = conn.execute(statements["claim"], [batch]).fetchall()
            if not rows:
                return
            done = []
            for job_id, attempt, _priority, _queued in sorted(rows, key=lambda r: (-r[2], r[3])):
                started = conn.execute(statements["start"], [job_id, attempt]).fetchall()
                if started:
                    done.append((job_id, attempt, started[0][requested], datetime.now(UTC)))
            if done:
                ids, attempts, successful, finished = (list(column) for column in zip(*done, strict=True))
                conn.execute(
                    statements["complete_batch"],
                    {
                        "ids": ids,
                        "attempts": attempts,
                        "successful": successful,
                        "results": [None] * len(done),
                        "finished": finished,
                        **statements["without_credits"],
                    },
                ).fetchall()


def run_raw(user_id, kind_id, n: int, batch: int, prepared: bool, label: str = "") -> float:
    prefix = f"raw{label}-b{batch}-"
    insert_jobs(user_id, kind_id, prefix, n)
    from jobs import engine

    statements = {
        "claim": engine.CLAIM_SQL,
        "start": engine.START_SQL,
        "complete_batch": engine.COMPLETE_BATCH_SQL,
        "without_credits": engine._WITHOUT_CREDITS_PARAMS,
        "requested_count_index": engine._JOB_FIELDS.index("requested_count"),
    }
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    args = (batch, go, statements, prepared)
    procs = [ctx.Process(target=raw_worker, args=args) for _ in range(2)]
    for proc in procs:
        proc.start()
    time.sleep(3)
    go.set()
    for proc in procs:
        proc.join()
    assert count_left(prefix) == 0
    return measured_rate(prefix, n)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--rounds", type=int, default=1, help="engine/raw pairs per row (median printed)")
    parser.add_argument("--cpu-hog", type=int, default=0, metavar="N", help="CPU-burning processes alongside")
    parser.add_argument("--prepared", action="store_true", help="DATABASE_PREPARED_STATEMENTS=true (workers)")
    args = parser.parse_args()
    env = configure(DB)
    if args.prepared:
        env["DATABASE_PREPARED_STATEMENTS"] = "true"
    create_database(DB)
    ctx = multiprocessing.get_context("spawn")
    stop_hogs = ctx.Event()
    hogs = [ctx.Process(target=burn_cpu, args=(stop_hogs,), daemon=True) for _ in range(args.cpu_hog)]
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from accounts.models import User
        from jobs.models import JobKind

        user = User.objects.create_user("throughput-bench@example.com", "x")
        kind = JobKind.objects.create(code="bench_noop", credits_per_unit=0, max_retries=0, timeout=60)
        from django.conf import settings
        from django.db import connections

        from accounts.services import preferences_update

        connections.close_all()
        for hog in hogs:
            hog.start()
        print(
            f"{args.jobs:,} jobs per run, two worker processes, no-op processor, "
            f"{args.cpu_hog} CPU hog(s), prepared statements {'on' if args.prepared else 'off'}, "
            f"load average {os.getloadavg()[0]:.1f} at start\n"
        )
        header = f"{'claim batch':>24} | {'celery jobs/s':>13} | {'raw SQL jobs/s':>14} | celery / raw"
        print(header, flush=True)
        batches = [int(b) for b in args.batches.split(",")]
        # The engine alone: the bench user has opted out of job-finished emails (the raw SQL
        # baseline sends none). The last row keeps the default (an email task per job).
        preferences_update(user=user, notifications={"job_finished": False})
        most = settings.JOBS_CLAIM_BATCH_MAX
        floor = settings.JOBS_CLAIM_BATCH
        for batch in [*batches, None]:
            label = f"{batch}" if batch else f"adaptive ({floor}-{most}; raw: {most})"
            pairs = []
            for round_ in range(args.rounds):
                celery_rate = run_celery(env, user.pk, kind.pk, args.jobs, batch, label=f"-r{round_}")
                raw_rate = run_raw(
                    user.pk, kind.pk, args.jobs, batch or most, args.prepared, label=f"-r{round_}"
                )
                pairs.append((celery_rate, raw_rate))
                ratio = celery_rate / raw_rate
                print(f"{label:>24} | {celery_rate:>13.0f} | {raw_rate:>14.0f} | {ratio:>11.0%}", flush=True)
            if args.rounds > 1:
                engine_rates, raw_rates = zip(*pairs, strict=True)
                ratio = statistics.median(e / r for e, r in pairs)
                print(
                    f"{'median of ' + str(args.rounds):>24} | {statistics.median(engine_rates):>13.0f} | "
                    f"{statistics.median(raw_rates):>14.0f} | {ratio:>11.0%}",
                    flush=True,
                )
        print(f"load average {os.getloadavg()[0]:.1f} at the end", flush=True)
        if args.cpu_hog:
            return
        preferences_update(user=user, notifications={"job_finished": True})
        connections.close_all()
        celery_rate = run_celery(env, user.pk, kind.pk, args.jobs, None, label="-emails")
        print(
            f"{'adaptive':>24} | {celery_rate:>13.0f} | {'':>14} | with a job-finished email queued per job",
            flush=True,
        )
    finally:
        stop_hogs.set()
        for hog in hogs:
            if hog.is_alive() or hog.exitcode is None:
                hog.join(timeout=10)
        from django.db import connections

        connections.close_all()
        drop_database(DB)


if __name__ == "__main__":
    main()
