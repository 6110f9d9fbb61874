"""The external workers' pull protocol: what it costs per job, through gunicorn.

Creates its own database `bench_worker_protocol` (dropped at the end), migrates it, gives a
user credits, creates N queued `video_render` jobs, then runs them through the protocol as a
worker does — claim (1 job), one heartbeat, report `completed` — over HTTP against a real
gunicorn, `--clients` workers in parallel. The baseline does the same state changes with raw
SQL on one connection per client (claim with FOR UPDATE SKIP LOCKED and the status moves,
each authorised for the status guard as job_transition does, heartbeat UPDATE, completion UPDATE);
it skips the ledger's refund path (no failed units), as the protocol's completion does too.

    .venv/bin/python bench/worker_protocol.py --jobs 400 --clients 4
    .venv/bin/python bench/worker_protocol.py --jobs 10 --clients 1   # smoke run

Reports jobs/s and per-job milliseconds for both, and the protocol's share of raw SQL.
"""

import argparse
import http.client
import json
import threading
import time

from harness import (
    close_django_connections,
    configure,
    connect,
    create_database,
    drop_database,
    start_gunicorn,
)

DB = "bench_worker_protocol"


def make_jobs(count: int, tag: str) -> tuple[str, str]:
    """A funded user with `count` queued render jobs; returns (user id, worker key)."""
    from accounts.services import api_key_create
    from credits.services import credits_grant
    from jobs.services import job_create
    from tests.factories import UserFactory

    user = UserFactory()
    credits_grant(user=user, amount=count, idempotency_key=f"bench-worker-protocol:{tag}")
    for _ in range(count):
        job_create(user=user, kind_code="video_render")
    _, key = api_key_create(name="bench", scopes=["jobs:work"], job_kinds=["video_render"])
    return str(user.pk), key


def protocol_client(port: int, key: str, done: list, index: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}

    def post(path: str, body: dict) -> dict:
        conn.request("POST", path, json.dumps(body), headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise SystemExit(f"{path}: {response.status} {data[:200]!r}")
        return json.loads(data)

    while True:
        jobs = post("/api/worker/claim", {"kinds": ["video_render"], "max": 1, "lease_seconds": 60})["jobs"]
        if not jobs:
            return
        job = jobs[0]
        post(f"/api/worker/jobs/{job['id']}/heartbeat", {"attempt": job["attempt"], "progress": 50})
        post(f"/api/worker/jobs/{job['id']}/report", {"attempt": job["attempt"], "status": "completed"})
        done[index] += 1


AUTHORISE = "SELECT set_config('jobs.transition', %s, true)"


def raw_statements() -> dict:
    """The baseline's statements, built from the model's table and the status enum."""
    from jobs.models import Job
    from jobs.states import JobStatus as S

    table = Job._meta.db_table
    return {
        "claim": f"SELECT id, attempts FROM {table} "
        f"WHERE status IN ('{S.QUEUED.value}', '{S.RETRYING.value}') AND NOT runs_on_engine "
        "ORDER BY priority DESC, queued_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        "lock": f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE",
        "preparing": f"UPDATE {table} SET status = '{S.PREPARING.value}', attempts = %s, "
        "heartbeat_at = now(), lease_expires_at = now() + interval '60 s', updated_at = now() WHERE id = %s",
        "processing": f"UPDATE {table} SET status = '{S.PROCESSING.value}', progress = 50, "
        "heartbeat_at = now(), lease_expires_at = now() + interval '60 s', started_at = now(), "
        "updated_at = now() WHERE id = %s",
        "completed": f"UPDATE {table} SET status = '{S.COMPLETED.value}', progress = 100, "
        "successful_count = requested_count, completed_at = now(), heartbeat_at = now(), updated_at = now() "
        "WHERE id = %s",
    }


def raw_client(sql: dict, done: list, index: int) -> None:
    with connect(DB, autocommit=False) as conn:
        while True:
            with conn.transaction():
                row = conn.execute(sql["claim"]).fetchone()
                if row is None:
                    return
                job_id, attempts = row
                conn.execute(AUTHORISE, [str(job_id)])
                conn.execute(sql["preparing"], [attempts + 1, job_id])
            for step in ("processing", "completed"):
                with conn.transaction():
                    conn.execute(sql["lock"], [job_id])
                    conn.execute(AUTHORISE, [str(job_id)])
                    conn.execute(sql[step], [job_id])
            done[index] += 1


def timed(target, clients: int, *args) -> tuple[int, float]:
    done = [0] * clients
    threads = [threading.Thread(target=target, args=(*args, done, i)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), time.perf_counter() - start


def report(label: str, jobs: int, seconds: float, clients: int) -> None:
    per_job = 1000 * seconds * clients / max(jobs, 1)
    print(
        f"{label}: {jobs} jobs in {seconds:.2f} s = {jobs / seconds:.1f} jobs/s, "
        f"{per_job:.2f} ms per job per client"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--port", type=int, default=8766)
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
        _, key = make_jobs(args.jobs, "protocol")
        close_django_connections()
        server = start_gunicorn(port=args.port, workers=args.web_workers, env=env)
        n, seconds = timed(protocol_client, args.clients, args.port, key)
        print(
            f"protocol (claim + heartbeat + report over HTTP): {n} jobs in {seconds:.2f} s = "
            f"{n / seconds:.1f} jobs/s, {1000 * seconds * args.clients / max(n, 1):.2f} ms per job per client"
        )
        make_jobs(args.jobs, "raw")
        close_django_connections()
        m, raw_seconds = timed(raw_client, args.clients, raw_statements())
        report("raw SQL (the same state changes)", m, raw_seconds, args.clients)
        if n and m:
            print(f"protocol throughput = {100 * (n / seconds) / (m / raw_seconds):.0f}% of raw SQL")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        close_django_connections()
        drop_database(DB)


if __name__ == "__main__":
    main()
