"""One machine's capacity: the mixed user scenario (bench/locustfile.py) against the processes of
a deployment, at rising user counts, until p95 goes over budget or errors appear.

    .venv/bin/python bench/capacity.py [--steps 5,10,20,40,80,160] [--step-seconds 40]
        [--p95-budget-ms 500] [--max-error-rate 0.01] [--web-workers 2] [--web-threads 4]
        [--worker-concurrency 2] [--accounts 100] [--port 8791] [--keep]

Creates its own database `bench_capacity` (dropped at the end unless --keep), migrates it,
seeds the demo data (`seed_demo`'s commands), `--accounts` premium accounts with 1,000,000 credits each,
20 items with a large stock in the demo shop, a PromptPay webhook secret and a render-worker key.
Starts a private redis-server (broker and cache, nobody else's) and the processes as the
Procfile / `make run` start them: gunicorn (`-c config/gunicorn.py`, `--web-workers` sync workers
with `--web-threads` threads), `celery -A config worker --concurrency N` and the reference render
worker (`python -m workers.render.worker`). Then, per step, runs Locust headless (`--step-seconds`,
all users spawned in the first two seconds) and prints per endpoint: requests, failures, p50,
p95, p99 (ms) and req/s; the step's throughput, error rate and the CPU used by gunicorn, the
PostgreSQL backends of the bench database, the Celery worker, the render worker (with its
ffmpeg) and Locust itself (% of one core), and the machine's load. GET /healthz (no database)
runs in the same mix as the baseline. It stops after the first step whose p95 over the whole mix
exceeds the budget or whose error rate exceeds the limit: the step before it is the capacity.
"""

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, close_django_connections, configure, connect, create_database, drop_database

DB = "bench_capacity"
WEBHOOK_SECRET = "bench-capacity-webhook-secret"
CLK_TCK = os.sysconf("SC_CLK_TCK")
STL = """solid bench
facet normal 0 0 -1
 outer loop
  vertex 0 0 0
  vertex 1 0 0
  vertex 0 1 0
 endloop
endfacet
facet normal 0 -1 0
 outer loop
  vertex 0 0 0
  vertex 0 0 1
  vertex 1 0 0
 endloop
endfacet
facet normal -1 0 0
 outer loop
  vertex 0 0 0
  vertex 0 1 0
  vertex 0 0 1
 endloop
endfacet
facet normal 1 1 1
 outer loop
  vertex 1 0 0
  vertex 0 0 1
  vertex 0 1 0
 endloop
endfacet
endsolid bench
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.1)
    raise SystemExit("redis-server did not start")


def seed(accounts: int, workdir: Path) -> dict:
    """Demo data, the bench accounts and their tokens, the shop's items, the files to upload."""
    import django

    django.setup()
    from django.core.management import call_command, get_commands
    from django.test.utils import override_settings
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.management.commands.seed_demo import DEMO_EMAIL
    from accounts.models import SubscriptionPlan, User
    from accounts.services import api_key_create, subscription_activate, user_register
    from credits.models import CreditPackage
    from credits.services import credits_grant
    from shops.management.commands.seed_demo_shops import DEMO_FORM_SLUG
    from shops.models import Form
    from shops.services import item_create

    call_command("migrate", verbosity=0)
    # seed_demo, without seed_demo_worker_key (it would rewrite this checkout's .var key file)
    user_register(email=DEMO_EMAIL, password="demo-user-Pass-1", name="Demo User", organization="Demo Co")
    for name in sorted(get_commands()):
        if name.startswith("seed_demo_") and name != "seed_demo_worker_key":
            call_command(name, stdout=open(os.devnull, "w"))
    owner = User.objects.get(email=DEMO_EMAIL)
    # The accounts log in by token, never by password: hash theirs cheaply (this process only),
    # or PBKDF2 makes seeding take minutes on a busy machine.
    tokens = []
    premium = SubscriptionPlan.objects.get(code="premium_yearly")
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        for i in range(accounts):
            user = user_register(
                email=f"bench{i}@example.com", password="bench-user-Pass-1", name=f"Bench {i}"
            )
            credits_grant(user=user, amount=1_000_000, idempotency_key=f"bench-capacity:{i}")
            # Premium subscribers (100 model slots): a free account's 5 fill within the first
            # steps, after which its imports are refused (403, correctly) and the mix changes.
            subscription_activate(user_id=user.pk, plan=premium)
            tokens.append(str(RefreshToken.for_user(user).access_token))
    form = Form.objects.get(slug=DEMO_FORM_SLUG)
    item_ids = [
        str(
            item_create(
                shop=form.shop, sku=f"BENCH-{i}", name=f"Bench item {i}", price="100.00", stock_quantity=10**8
            ).pk
        )
        for i in range(20)
    ]
    package = CreditPackage.objects.filter(price__gt=0, is_active=True).order_by("price").first()
    _, render_key = api_key_create(
        name="bench render worker", scopes=["jobs:work"], job_kinds=["video_render"]
    )
    stl = workdir / "part.stl"
    stl.write_text(STL)
    clip = workdir / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=10"]
        + ["-pix_fmt", "yuv420p", str(clip)],
        check=True,
    )
    close_django_connections()
    return {
        "tokens": tokens,
        "owner_token": str(RefreshToken.for_user(owner).access_token),
        "shop_id": str(form.shop_id),
        "form_slug": DEMO_FORM_SLUG,
        "item_ids": item_ids,
        "package_id": str(package.pk),
        "webhook_secret": WEBHOOK_SECRET,
        "stl_path": str(stl),
        "clip_path": str(clip),
        "render_key": render_key,
    }


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_healthy(port: int, proc: subprocess.Popen) -> None:
    import http.client

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited; see its log")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("gunicorn did not answer /healthz")


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / CLK_TCK


def db_backends() -> list[int]:
    with connect("postgres", autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [DB]).fetchall()
    return [row[0] for row in rows]


def machine_busy() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def run_step(users: int, seconds: int, port: int, env: dict, outdir: Path, groups: dict) -> dict:
    prefix = outdir / f"u{users}"
    locust = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("locust")),
            "-f",
            str(ROOT / "bench" / "locustfile.py"),
            "--headless",
            "--users",
            str(users),
            "--spawn-rate",
            str(max(1, users // 2)),
            "--run-time",
            f"{seconds}s",
            "--host",
            f"http://127.0.0.1:{port}",
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "ERROR",
            "--stop-timeout",
            "10",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(outdir / f"u{users}.log").open("w"),
    )
    pids = {name: pids_of() for name, pids_of in groups.items()}
    pids["postgres (bench db)"] = db_backends()
    before = {name: cpu_seconds(p) for name, p in pids.items()}
    busy0, total0 = machine_busy()
    started = time.monotonic()
    _, status, usage = os.wait4(locust.pid, 0)  # its CPU time comes with its exit
    locust.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - started
    pids["postgres (bench db)"] = sorted(set(pids["postgres (bench db)"]) | set(db_backends()))
    cpu = {name: 100 * (cpu_seconds(p) - before.get(name, 0)) / elapsed for name, p in pids.items()}
    cpu["locust"] = 100 * (usage.ru_utime + usage.ru_stime) / elapsed  # start-up included
    busy1, total1 = machine_busy()
    rows = list(csv.DictReader((prefix.parent / f"{prefix.name}_stats.csv").open()))
    return {
        "users": users,
        "rows": rows,
        "cpu": cpu,
        "machine_busy": 100 * (busy1 - busy0) / max(1, total1 - total0),
        "load": os.getloadavg()[0],
    }


def print_step(step: dict) -> tuple[float, float, float]:
    print(f"\n== {step['users']} users")
    print(f"{'endpoint':44} {'reqs':>6} {'fail':>5} {'p50':>6} {'p95':>6} {'p99':>6} {'req/s':>7}")
    aggregate = None
    for row in step["rows"]:
        if row["Name"] == "Aggregated":
            aggregate = row
            continue
        print(
            f"{row['Name'][:44]:44} {row['Request Count']:>6} {row['Failure Count']:>5} {row['50%']:>6} "
            f"{row['95%']:>6} {row['99%']:>6} {float(row['Requests/s']):7.1f}"
        )
    requests, failures = int(aggregate["Request Count"]), int(aggregate["Failure Count"])
    rate = failures / max(1, requests)
    print(
        f"{'all':44} {requests:>6} {failures:>5} {aggregate['50%']:>6} {aggregate['95%']:>6} "
        f"{aggregate['99%']:>6} {float(aggregate['Requests/s']):7.1f}   errors {100 * rate:.2f}%"
    )
    cpu = "  ".join(f"{name} {value:.0f}%" for name, value in step["cpu"].items())
    print(f"CPU (% of one core): {cpu}  | machine busy {step['machine_busy']:.0f}%, load {step['load']:.1f}")
    return float(aggregate["95%"]), rate, float(aggregate["Requests/s"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", default="5,10,20,40,80,160")
    parser.add_argument("--step-seconds", type=int, default=40)
    parser.add_argument("--p95-budget-ms", type=float, default=500)
    parser.add_argument("--max-error-rate", type=float, default=0.01)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--keep", action="store_true", help="keep the bench database and the logs")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each step shows as it ends, also into a file
    steps = [int(s) for s in args.steps.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    redis, redis_url = start_redis(workdir)
    env = configure(DB)
    env.update(
        {
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "JWT_ACCESS_MINUTES": "600",
            "PAYMENT_WEBHOOK_SECRET_PROMPTPAY": WEBHOOK_SECRET,
            # Every simulated customer and provider comes from 127.0.0.1, where in real life each
            # has an address of its own: the per-address limits stay on, out of the way.
            "THROTTLE_PUBLIC_FORM": "100000000/min",
            "THROTTLE_WEBHOOK": "100000000/min",
            "MEDIA_ROOT": str(workdir / "media"),
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.update(env)
    processes: list[subprocess.Popen] = []
    try:
        create_database(DB)
        data = seed(args.accounts, workdir)
        data_file = workdir / "data.json"
        data_file.write_text(json.dumps(data))
        env["BENCH_CAPACITY_DATA"] = str(data_file)
        bindir = Path(sys.executable).parent
        web = start(
            [str(bindir / "gunicorn"), "-c", "config/gunicorn.py", "config.wsgi:application"]
            + ["--bind", f"127.0.0.1:{args.port}", "--workers", str(args.web_workers)]
            + ["--threads", str(args.web_threads)],
            env,
            workdir / "web.log",
        )
        processes.append(web)
        worker = start(
            [str(bindir / "celery"), "-A", "config", "worker", "--concurrency", str(args.worker_concurrency)]
            + ["--loglevel", "WARNING"],
            env,
            workdir / "worker.log",
        )
        processes.append(worker)
        render = start(
            [sys.executable, "-m", "workers.render.worker"],
            {**env, "RENDER_API_URL": f"http://127.0.0.1:{args.port}", "RENDER_API_KEY": data["render_key"]},
            workdir / "render.log",
        )
        processes.append(render)
        wait_healthy(args.port, web)
        groups = {
            "gunicorn": lambda: descendants(web.pid),
            "celery worker": lambda: descendants(worker.pid),
            "render worker": lambda: descendants(render.pid),
        }
        print(
            f"capacity: gunicorn {args.web_workers}x{args.web_threads}, celery worker concurrency "
            f"{args.worker_concurrency}, render worker 1; {os.cpu_count()} CPUs, load "
            f"{os.getloadavg()[0]:.1f} at start; p95 budget {args.p95_budget_ms:.0f} ms, "
            f"error limit {100 * args.max_error_rate:.1f}%; {args.step_seconds} s per step"
        )
        within = None
        for users in steps:
            step = run_step(users, args.step_seconds, args.port, env, workdir, groups)
            p95, error_rate, throughput = print_step(step)
            if p95 > args.p95_budget_ms or error_rate > args.max_error_rate:
                print(
                    f"\nsaturated at {users} users (p95 {p95:.0f} ms, errors {100 * error_rate:.2f}%); "
                    + (
                        f"capacity: {within[0]} users, {within[1]:.1f} req/s within budget"
                        if within
                        else "no step was within budget"
                    )
                )
                break
            within = (users, throughput)
        else:
            print(f"\nnot saturated up to {steps[-1]} users ({within[1]:.1f} req/s): add steps")
    finally:
        for proc in processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        redis.terminate()
        redis.wait(timeout=10)
        if args.keep:
            print(f"kept: database {DB}, logs and Locust CSVs in {workdir}")
        else:
            drop_database(DB)
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
