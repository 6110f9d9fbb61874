"""Redis down degrades, never 500s, against a real Redis this test starts and kills."""

import logging
import shutil
import socket
import subprocess
import time

import pytest
import redis
from django.core.cache import cache
from rest_framework.test import APIClient

from config.cache import OncePerInterval
from config.celery import app as celery_app
from credits.services import credits_grant
from jobs import engine
from jobs.models import JobKind
from tests.conftest import client_for, forget_broker_connections
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """A private redis-server on a free loopback port that the test can stop and start again."""

    def __init__(self):
        self.binary = shutil.which("redis-server")
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the test's redis-server did not start")

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def own_redis(settings):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (make test installs it)")
    server = OwnRedis()
    server.start()
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": server.url}}
    settings.REDIS_URL = server.url
    old_broker = celery_app.conf.broker_url
    celery_app.conf.broker_url = server.url
    forget_broker_connections()
    yield server
    if server.process.poll() is None:
        server.kill()
    celery_app.conf.broker_url = old_broker
    forget_broker_connections()


@pytest.fixture
def fresh_log_filter(monkeypatch):
    """The cache logger's once-per-interval filter, as a process that has not logged yet."""
    monkeypatch.setattr(logging.getLogger("config.cache"), "filters", [OncePerInterval()])


@pytest.fixture
def engine_kind():
    return JobKind.objects.get_or_create(
        code="redis_down_noop",
        defaults={
            "name": "noop",
            "credits_per_unit": 1,
            "executor": JobKind.Executor.ENGINE,
            "max_retries": 1,
            "timeout": 60,
        },
    )[0]


def test_database_only_requests_keep_answering_while_redis_is_down(own_redis, user, caplog, fresh_log_filter):
    credits_grant(user=user, amount=5, idempotency_key="redis-down-grant")
    cache.set("warm", 1)  # the cache really is the test's Redis
    assert redis.Redis.from_url(own_redis.url).dbsize() >= 1

    # when Redis dies
    own_redis.kill()
    caplog.set_level(logging.WARNING, logger="config.cache")
    anonymous = APIClient()

    # then login, the public catalogue and authenticated reads and writes all answer
    login = anonymous.post(
        "/api/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )
    assert login.status_code == 200
    assert anonymous.get("/api/credits/packages").status_code == 200
    me = client_for(user)
    assert me.get("/api/users/me").json()["credit_balance"] == 5
    created = me.post("/api/jobs", {"kind": "account_batch", "requested_count": 2}, format="json")
    assert created.status_code == 201, created.content
    assert me.get("/api/credits/balance").status_code == 200
    # readiness tells the truth
    ready = anonymous.get("/readyz")
    assert ready.status_code == 503 and "redis" in ready.content.decode().lower()
    # and the degradation was logged
    assert any(r.name == "config.cache" and r.levelno >= logging.WARNING for r in caplog.records)


def test_a_wakeup_lost_while_redis_was_down_is_sent_again_by_the_rescue(
    own_redis, user, engine_kind, django_capture_on_commit_callbacks, caplog
):
    credits_grant(user=user, amount=5, idempotency_key="redis-down-engine")
    own_redis.kill()
    caplog.set_level(logging.ERROR)

    # a committed engine job whose wake-up cannot be published
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(user).post("/api/jobs", {"kind": engine_kind.code}, format="json")
    assert response.status_code == 201
    assert any("wake-up" in r.getMessage() for r in caplog.records), "the lost enqueue is logged"

    # when Redis is back, the every-minute rescue re-announces the queued job
    own_redis.start()
    forget_broker_connections()
    with django_capture_on_commit_callbacks(execute=True):
        result = engine.jobs_rescue_stale()

    assert result["due"] >= 1
    assert redis.Redis.from_url(own_redis.url).llen("jobs") >= 1


def test_every_cache_call_is_a_miss_while_redis_is_down_and_is_logged_once(
    own_redis, caplog, fresh_log_filter
):
    cache.set("kept", 1)
    own_redis.kill()
    caplog.set_level(logging.WARNING, logger="config.cache")

    # when every kind of call meets a dead Redis
    results = {
        "get": cache.get("kept", "default"),
        "get_many": cache.get_many(["kept"]),
        "add": cache.add("cooldown", 1, timeout=60),
        "set": cache.set("kept", 2),
        "incr": cache.incr("kept"),
        "delete": cache.delete("kept"),
    }

    # then none raises: reads are misses, writes are dropped, `add` is neither True nor False
    assert results == {
        "get": "default",
        "get_many": {},
        "add": None,
        "set": None,
        "incr": None,
        "delete": None,
    }
    # and six failures logged one record, not six
    assert len([r for r in caplog.records if r.name == "config.cache"]) == 1
