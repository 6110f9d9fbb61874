"""GET /api/stats over one user's 1,000,000 jobs vs a raw-SQL aggregate over the jobs table.

    .venv/bin/python bench/jobs_stats.py [--jobs 1000000] [--requests 200]

Creates its own database `bench_jobs_stats` (dropped at the end). The jobs are generated with
one set-based `INSERT … SELECT generate_series` spread over the last two years (the rollup
triggers are disabled for the load and the rollup is rebuilt set-based, as an operator would
after a bulk import). Then, for a one-week and a one-year range:

- api: GET /api/stats?from=&to= through the whole Django stack (middleware, JWT auth, view,
  selector reading the JobDailyStat rollup) with DRF's test client, `--requests` times;
- raw: the same totals computed by psycopg straight from jobs_job (+ jobs_artifact) with the
  (user_id, created_at) index — what the endpoint would cost without the rollup.

Prints p50/p95 of both, the ratio, and the EXPLAIN (ANALYZE) plans. Target: api p95 <= raw p95
and < 50 ms.
"""

import argparse
import time
import warnings
from datetime import timedelta

from harness import (
    configure,
    connect,
    create_database,
    drop_database,
    percentiles,
    setup_django,
)

DB = "bench_jobs_stats"
JOB_COLUMNS = (
    "id, created_at, updated_at, user_id, kind_id, external_id, status, priority, runs_on_engine, "
    "params, requested_count, successful_count, failed_count, progress, attempts, max_retries, "
    "credits_charged, credits_refunded, charged, holds_model_slot, result, error, queued_at"
)

LOAD_SQL = f"""
INSERT INTO jobs_job ({JOB_COLUMNS})
SELECT gen_random_uuid(), ts, ts, %(user)s, %(kind)s, 'bench-' || i,
       CASE WHEN i %% 10 = 0 THEN 'failed' ELSE 'completed' END, 0, false, '{{}}'::jsonb,
       1 + i %% 5, CASE WHEN i %% 10 = 0 THEN 0 ELSE 1 + i %% 5 - (i %% 3 = 0)::int END,
       CASE WHEN i %% 10 = 0 THEN 1 + i %% 5 ELSE (i %% 3 = 0)::int END, 100, 1, 3,
       1 + i %% 5, CASE WHEN i %% 10 = 0 THEN 1 + i %% 5 ELSE (i %% 3 = 0)::int END, true, false,
       '{{}}'::jsonb, '', ts
  FROM (SELECT i, now() - (i %% 730) * interval '1 day' - (i %% 86400) * interval '1 second' AS ts
          FROM generate_series(1, %(n)s) AS i) AS g
"""

RAW_SQL = """
SELECT count(*), COALESCE(sum(requested_count), 0), COALESCE(sum(successful_count), 0),
       COALESCE(sum(failed_count), 0), COALESCE(sum(credits_charged - credits_refunded), 0),
       (SELECT count(*) FROM jobs_artifact a WHERE a.user_id = %(user)s
           AND a.job_date BETWEEN %(from)s AND %(to)s)
  FROM jobs_job
 WHERE user_id = %(user)s AND created_at >= %(from)s::date AND created_at < %(to)s::date + 1
"""

# Disabled for the bulk load: the rollup (rebuilt after) and the status guard (migration 0008).
TRIGGERS = (
    "jobs_job_daily_stat_ins",
    "jobs_job_daily_stat_upd",
    "jobs_job_daily_stat_del",
    "jobs_job_status_guard_ins",
)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--raw-runs", type=int, default=20)
    args = parser.parse_args()
    configure(DB)
    create_database(DB)
    try:
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(DB)


def run(args):
    warnings.filterwarnings("ignore", message="No directory at")
    setup_django()
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.models import User
    from jobs import selectors, services
    from jobs.models import JobDailyStat, JobKind

    user = User.objects.create_user("stats-bench@example.com", "x")
    kind = JobKind.objects.get(code="account_batch")
    started = time.perf_counter()
    with connect(DB, autocommit=True) as conn:
        for trigger in TRIGGERS:
            conn.execute(f"ALTER TABLE jobs_job DISABLE TRIGGER {trigger}")
        conn.execute(LOAD_SQL, {"user": user.pk, "kind": kind.pk, "n": args.jobs})
        for trigger in TRIGGERS:
            conn.execute(f"ALTER TABLE jobs_job ENABLE TRIGGER {trigger}")
        conn.execute("ANALYZE jobs_job")
    loaded = time.perf_counter()
    services.job_daily_stats_rebuild(user_id=user.pk)
    with connect(DB, autocommit=True) as conn:
        conn.execute("ANALYZE jobs_jobdailystat")
    print(
        f"loaded {args.jobs:,} jobs in {loaded - started:.1f}s; rollup rebuilt in "
        f"{time.perf_counter() - loaded:.1f}s ({JobDailyStat.objects.count()} day rows)"
    )

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    today = time.gmtime()
    from datetime import date

    to = date(today.tm_year, today.tm_mon, today.tm_mday)
    ranges = {"one week": (to - timedelta(days=6), to), "one year": (to - timedelta(days=364), to)}
    print(
        f"\n{'range':<10} {'jobs':>9} | {'api p50':>8} {'api p95':>8} | {'raw p50':>8} {'raw p95':>8} | "
        "raw p95 / api p95"
    )
    with connect(DB, autocommit=True) as raw:
        for label, (frm, to_) in ranges.items():
            url = f"/api/stats?from={frm}&to={to_}"
            for _ in range(10):
                client.get(url)
            api_ms = []
            for _ in range(args.requests):
                t0 = time.perf_counter()
                response = client.get(url)
                api_ms.append((time.perf_counter() - t0) * 1000)
            body = response.json()
            params = {"user": user.pk, "from": frm, "to": to_}
            raw.execute(RAW_SQL, params).fetchone()
            raw_ms = []
            for _ in range(args.raw_runs):
                t0 = time.perf_counter()
                row = raw.execute(RAW_SQL, params).fetchone()
                raw_ms.append((time.perf_counter() - t0) * 1000)
            assert (
                body["jobs"],
                body["requested"],
                body["successful"],
                body["failed"],
                body["credits_spent"],
            ) == tuple(int(v) for v in row[:5]), (body, row)
            a50, a95 = percentiles(api_ms)
            r50, r95 = percentiles(raw_ms)
            print(
                f"{label:<10} {body['jobs']:>9,} | {a50:>6.2f}ms {a95:>6.2f}ms | "
                f"{r50:>6.1f}ms {r95:>6.1f}ms | {r95 / a95:>6.1f}x"
            )
        frm, to_ = ranges["one year"]
        qs = selectors.JobDailyStat.objects.filter(user=user, date__gte=frm, date__lte=to_)
        print("\nEXPLAIN ANALYZE, the endpoint's query (one year):")
        from django.db.models import Sum

        print(qs.values("user").annotate(s=Sum("jobs")).explain(analyze=True))
        print("\nEXPLAIN ANALYZE, the raw baseline over jobs_job (one year):")
        for (line,) in raw.execute("EXPLAIN ANALYZE " + RAW_SQL, {"user": user.pk, "from": frm, "to": to_}):
            print(line)


if __name__ == "__main__":
    main()
