import importlib
import time
from contextlib import contextmanager

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from config.celery import app as celery_app
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _clean_cache():
    """Throttle counters and cached values live in Redis: each test starts from nothing."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def deferred_triggers_now() -> None:
    """Make deferred triggers (the jobs stats rollup's) fire at each statement: they fire at
    commit, and a test that runs inside one never-committed transaction never gets there."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.fixture
def admin_client(admin_user):
    """pytest-django's admin client, past the admin's second factor as well as its password."""
    from django.test import Client

    from tests.factories import admin_login

    client = Client()
    admin_login(client, admin_user)
    return client


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def auth_client(user):
    return client_for(user)


@pytest.fixture
def other_client(other_user):
    return client_for(other_user)


def assert_error(response, status: int, code: str | None = None):
    """The response is the error envelope with this status (and code, if given)."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture
def reference_data(transactional_db):
    """Put back the rows the data migrations seed (credit packages, job kinds).

    Transactional tests end by flushing every table, seeded rows included, so a transactional
    test that relies on them asks for this fixture.
    """
    from django.apps import apps

    from jobs.models import JobKind
    from jobs.seed import CURRENT_SEED_KINDS

    importlib.import_module("credits.migrations.0002_seed_credit_packages").seed(apps, None)
    seed_subscription_plans()
    for kind in CURRENT_SEED_KINDS:
        JobKind.objects.get_or_create(code=kind["code"], defaults=kind)


def seed_subscription_plans() -> None:
    """Put back the plans the accounts data migration seeds (found by its name's suffix, so a
    renumbered migration still works)."""
    import pkgutil

    from django.apps import apps

    import accounts.migrations

    (name,) = [
        m.name
        for m in pkgutil.iter_modules(accounts.migrations.__path__)
        if m.name.endswith("_subscription_plans")
    ]
    importlib.import_module(f"accounts.migrations.{name}").seed_plans(apps, None)


@pytest.fixture(scope="module")
def mail_worker():
    """A real worker on the `default` queue (purged first, so it only runs what the test sends)."""
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("default")
    with start_worker(
        celery_app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=["default"],
        shutdown_timeout=30,
        loglevel="WARNING",
    ):
        yield


@pytest.fixture
def sent(mailoutbox, mail_worker, django_capture_on_commit_callbacks):
    """Run a request's after-commit callbacks (which queue the email), then wait for the worker
    to deliver `n` messages into the locmem outbox."""

    class Sent:
        def capture(self):
            return django_capture_on_commit_callbacks(execute=True)

        def wait(self, n: int):
            deadline = time.monotonic() + 30
            while len(mailoutbox) < n and time.monotonic() < deadline:
                time.sleep(0.05)
            return mailoutbox

    return Sent()


@contextmanager
def finished_tasks():
    """The ids of the Celery tasks a worker in this process (start_worker) finishes while the
    block runs — what a test waits for instead of sleeping and hoping a message was consumed
    (task_postrun fires after the task body returned or raised)."""
    ids: set[str] = set()

    def record(task_id=None, **kwargs):
        ids.add(task_id)

    task_postrun.connect(record, weak=False)
    try:
        yield ids
    finally:
        task_postrun.disconnect(record)
