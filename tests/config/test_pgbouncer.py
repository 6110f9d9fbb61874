"""Pooler-safe by default: the app, as deployed with its default settings, runs behind PgBouncer
in transaction mode (Debian's package, which keeps no prepared statement and no session state
from one transaction to the next).

The test starts its own PgBouncer on a free port in front of the test database, then runs a real
Celery worker process draining engine jobs, and a real gunicorn serving a public shop order,
both connected through it; PgBouncer's own statistics show their transactions went through it.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from jobs import services as job_services
from jobs.models import Job, JobKind
from shops.models import FormSubmission, Item
from tests.factories import UserFactory
from tests.jobs.conftest import TEST_KINDS, give_credits
from tests.jobs.test_engine import wait_for
from tests.shops.factories import CUSTOMER, make_form, make_item, make_shop

ROOT = Path(settings.BASE_DIR)
pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def pgbouncer_binary() -> str:
    binary = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if binary is None:
        pytest.fail("pgbouncer is not installed (make test installs Debian's package: scripts/services.sh)")
    return binary


class PgBouncer:
    """A private PgBouncer in transaction mode in front of the test database's server. It keeps
    four server connections and hands them out in turn (server_round_robin), as a busy pooler
    does: consecutive transactions of one client land on different server sessions, so anything
    left in a session (a prepared statement, a cursor, a setting) is not there next time."""

    def __init__(self):
        db = connection.settings_dict
        self.database = db["NAME"]
        self.user = db["USER"] or "postgres"
        self.port = free_port()
        # Readable by the user PgBouncer switches to (it refuses to run as root).
        self.folder = Path(tempfile.mkdtemp(prefix="test-pgbouncer-"))
        self.folder.chmod(0o755)
        (self.folder / "users.txt").write_text(f'"{self.user}" ""\n')
        (self.folder / "pgbouncer.ini").write_text(
            f"""
[databases]
* = host={db["HOST"] or "127.0.0.1"} port={db["PORT"] or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.folder}/users.txt
admin_users = {self.user}
pool_mode = transaction
default_pool_size = 4
min_pool_size = 4
server_round_robin = 1
max_client_conn = 100
ignore_startup_parameters = extra_float_digits, options
"""
        )
        command = [pgbouncer_binary(), str(self.folder / "pgbouncer.ini")]
        if os.geteuid() == 0:
            command[1:1] = ["-u", "postgres"]
            shutil.chown(self.folder, "postgres")
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"PgBouncer did not start: {self.process.stderr.read()}")
            time.sleep(0.05)

    @property
    def database_url(self) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def transactions(self) -> int:
        """How many transactions PgBouncer has passed to the test database (its admin console,
        which speaks the simple query protocol only: a client-side-binding cursor)."""
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="pgbouncer", autocommit=True
        ) as admin:
            cursor = psycopg.ClientCursor(admin)
            cursor.execute("SHOW STATS")
            columns = [c.name for c in cursor.description]
            rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        return sum(int(row["total_xact_count"]) for row in rows if row["database"] == self.database)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.process.stderr.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def pgbouncer():
    bouncer = PgBouncer()
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture
def end_other_sessions():
    """The subprocesses' server connections (through PgBouncer, which keeps them pooled) would
    keep the test database from being flushed and dropped."""
    yield
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def app_env(bouncer: PgBouncer, **extra) -> dict:
    """The environment of a process of the app deployed behind the pooler: the default
    settings but for the database URL."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": bouncer.database_url,
        "CONN_MAX_AGE": "60",
        **extra,
    }
    for name in ("DATABASE_PREPARED_STATEMENTS", "DATABASE_SERVER_SIDE_CURSORS"):
        env.pop(name, None)  # the defaults: what a pooler needs
    return env


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def request(method: str, url: str, body: dict | None = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_by_default_nothing_a_transaction_mode_pooler_breaks_is_on():
    assert settings.DATABASE_PREPARED_STATEMENTS is False and settings.JOBS_DATABASE == "default"
    default = settings.DATABASES["default"]
    assert default.get("OPTIONS", {}).get("prepare_threshold") is None
    assert not default.get("OPTIONS", {}).get("server_side_binding")
    assert default["DISABLE_SERVER_SIDE_CURSORS"] is True


@pytest.fixture
def jobs_queue():
    """The test-only engine kinds, and the jobs queue on the test broker emptied before and after."""
    for kind in TEST_KINDS:
        JobKind.objects.get_or_create(code=kind["code"], defaults=kind)

    def purge():
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_purge("jobs")

    purge()
    yield
    purge()


def test_a_real_worker_drains_engine_jobs_through_pgbouncer_in_transaction_mode(
    pgbouncer, jobs_queue, end_other_sessions
):
    # given: 20 engine jobs (their wake-ups on the broker), a worker process that reaches the
    # database only through the pooler
    user = UserFactory()
    give_credits(user, 100)
    jobs = [job_services.job_create(user=user, kind_code="test_script", requested_count=2) for _ in range(20)]
    before = pgbouncer.transactions()
    worker = subprocess.Popen(
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
            "--loglevel",
            "WARNING",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=app_env(pgbouncer, JOBS_EXTRA_PROCESSOR_MODULES="tests.jobs.processors"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    done = Job.objects.filter(pk__in=[j.pk for j in jobs], status="completed")
    try:
        # when
        wait_for(lambda: done.count() == 20, "the worker to complete the 20 jobs")
    finally:
        stop(worker)

    # then: every job completed once, on its first attempt, charged once; through the pooler
    assert set(done.values_list("attempts", "successful_count", "credits_charged", "credits_refunded")) == {
        (1, 2, 2, 0)
    }
    assert pgbouncer.transactions() - before >= 20 * 2  # at least each job's start and completion


def test_a_public_order_is_served_by_gunicorn_through_pgbouncer_in_transaction_mode(
    pgbouncer, end_other_sessions
):
    # given: a shop's public form and an item, and gunicorn (as the Procfile runs it) reaching
    # the database only through the pooler
    shop = make_shop()
    form = make_form(shop)
    item = make_item(shop, stock=5)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "config/gunicorn.py",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ],
        cwd=ROOT,
        env=app_env(pgbouncer, ALLOWED_HOSTS="127.0.0.1,localhost"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: answers(port) or server.poll() is not None, "gunicorn to listen")
        assert server.poll() is None, server.stderr.read()
        before = pgbouncer.transactions()
        base = f"http://127.0.0.1:{port}/api/public/forms/{form.slug}"
        # when: the public form is read, then two orders are placed
        assert request("GET", base)[0] == 200
        order = {"customer": dict(CUSTOMER), "lines": [{"item_id": str(item.pk), "quantity": 2}]}
        responses = [request("POST", f"{base}/submit", order) for _ in range(2)]
    finally:
        stop(server)
        server.stderr.close()

    # then
    assert [status for status, _ in responses] == [201, 201], responses
    assert FormSubmission.objects.filter(form=form).count() == 2
    assert Item.objects.get(pk=item.pk).stock_quantity == 1
    assert pgbouncer.transactions() > before
