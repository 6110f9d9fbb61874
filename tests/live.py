"""The platform as deployed, for tests that talk to it over HTTP only: gunicorn (config/gunicorn.py)
and a plain Celery worker, both separate processes on the test database and Redis."""

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
from django.db import connection

REPO = Path(__file__).resolve().parents[1]


def wait_for(predicate, what: str, timeout: float = 90.0):
    """Poll `predicate` until it returns something truthy (returned) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def deployed(media_root: str, extra_env: dict[str, str] | None = None):
    """gunicorn and a Celery worker on the test database; yields the base URL once it answers.

    Use from a `transaction=True` test (the processes see only committed rows) that also ends
    the other connections (`drop_other_connections`), so the test database can be flushed."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "TEST_MEDIA_ROOT": str(media_root),
        **(extra_env or {}),
    }
    port = free_port()
    commands = [
        [
            *(sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi:application"),
            *("--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "2"),
        ],
        [
            *(sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo"),
            *("--loglevel", "WARNING", "--without-mingle", "--without-gossip"),
        ],
    ]
    procs = [
        subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for command in commands
    ]
    base = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, "gunicorn to answer")
        yield base
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
