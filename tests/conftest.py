import importlib
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from config.celery import app as celery_app
from config.settings.base import broker_transport_options, celery_queues
from tests.factories import UserFactory

# The brokers the as-deployed tests (a real worker consuming real messages) run on.
BROKERS = ("redis", "amqp")


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
    """Put back the rows the data migrations seed (credit packages, shop and subscription plans,
    job kinds).

    Transactional tests end by flushing every table, seeded rows included, so a transactional
    test that relies on them asks for this fixture.
    """
    from django.apps import apps

    from jobs.models import JobKind
    from jobs.seed import CURRENT_SEED_KINDS

    importlib.import_module("credits.migrations.0002_seed_credit_packages").seed(apps, None)
    importlib.import_module("shops.migrations.0013_seed_shop_plans").seed(apps, None)
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


def _rabbitmqctl(*args: str) -> None:
    command = ["rabbitmqctl", "-q", *args]
    if os.geteuid() != 0:
        command = ["sudo", "-n", *command]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def amqp_broker_url():
    """RabbitMQ for this test run: TEST_AMQP_URL when set, else a virtual host of the run's own
    (made with rabbitmqctl, deleted at the end), so checkouts testing side by side on one
    RabbitMQ never share a queue. `make services` makes sure RabbitMQ answers."""
    given = os.environ.get("TEST_AMQP_URL")
    if given:
        yield given
        return
    if shutil.which("rabbitmqctl") is None:
        pytest.fail("rabbitmqctl is not installed: run `make services` or set TEST_AMQP_URL")
    vhost = f"test-{django_settings.DATABASES['default']['NAME']}-{os.getpid()}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


def forget_broker_connections():
    """Forget the app's broker connection and producer pools (and its queues) so the next publish
    uses broker_url and task_queues anew (Celery has no public call for that short of close(),
    which also unregisters the app). The pools themselves stay open in kombu's registry, ready
    for when the URL is restored."""
    celery_app._pool = None
    del celery_app.amqp  # a cached property: rebuilt (queues, producer pool) from conf when next used


@contextmanager
def celery_on(url: str):
    """The app publishes to (and workers started meanwhile consume from) the broker at `url`."""
    conf = celery_app.conf
    previous = (conf.broker_url, conf.broker_transport_options, conf.task_queues)
    conf.broker_url, conf.broker_transport_options, conf.task_queues = (
        url,
        broker_transport_options(url),
        celery_queues(url),
    )
    forget_broker_connections()
    try:
        yield url
    finally:
        conf.broker_url, conf.broker_transport_options, conf.task_queues = previous
        forget_broker_connections()


def broker_url_for(request, name: str) -> str:
    """The test Redis database (TEST_REDIS_URL) or this run's RabbitMQ virtual host."""
    if name == "redis":
        return django_settings.CACHES["default"]["LOCATION"]
    return request.getfixturevalue("amqp_broker_url")


def purge_queues(*names: str) -> None:
    """Declare (RabbitMQ refuses to purge a queue it does not know) and empty Celery queues."""
    with celery_app.connection_for_write() as conn:
        for name in names:
            queue = celery_app.amqp.queues[name].bind(conn.default_channel)
            queue.declare()
            queue.purge()


def queued_messages(*names: str) -> int:
    """Messages waiting (not yet delivered to a worker) in Celery queues, on either broker
    (declared as they are, not passively: Redis has no trace of an empty queue)."""
    with celery_app.connection_for_write() as conn:
        return sum(
            celery_app.amqp.queues[name].bind(conn.default_channel).queue_declare().message_count
            for name in names
        )


@pytest.fixture(params=BROKERS)
def celery_broker(request):
    """The test runs once on Redis and once on RabbitMQ (the URL it runs on is the value)."""
    with celery_on(broker_url_for(request, request.param)) as url:
        yield url


@pytest.fixture(scope="module", params=BROKERS)
def mail_worker(request):
    """A real worker on the `default` queue (purged first, so it only runs what the test sends),
    on each broker in turn."""
    with celery_on(broker_url_for(request, request.param)):
        purge_queues("default")
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
            """The outbox once it holds `n` messages; fails after 30 s with fewer."""
            deadline = time.monotonic() + 30
            while len(mailoutbox) < n:
                if time.monotonic() > deadline:
                    pytest.fail(f"{len(mailoutbox)} of {n} emails sent: {[m.subject for m in mailoutbox]}")
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
