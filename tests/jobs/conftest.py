import pytest
from django.db import connection

from config.celery import app as celery_app
from credits.services import credits_grant
from jobs.models import JobKind
from jobs.seed import CURRENT_SEED_KINDS
from tests.conftest import deferred_triggers_now, purge_queues
from tests.jobs import processors as test_processors

TEST_KINDS = [
    {"code": code, "name": code, "credits_per_unit": 1, "executor": "engine", "max_retries": 3, "timeout": 60}
    for code in test_processors.TEST_KIND_CODES
]


@pytest.fixture(autouse=True)
def job_kinds(request, django_db_setup, django_db_blocker):
    """The seeded kinds plus the test-only engine kinds. Transactional tests flush tables, seed
    data included, so every test makes sure they exist."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        yield
        return
    request.getfixturevalue("db" if not marker.kwargs.get("transaction") else "transactional_db")
    for kind in CURRENT_SEED_KINDS + TEST_KINDS:
        JobKind.objects.get_or_create(code=kind["code"], defaults=kind)
    if not marker.kwargs.get("transaction"):
        deferred_triggers_now()  # the stats rollup's triggers
    yield


def give_credits(user, amount: int, key: str | None = None):
    credits_grant(user=user, amount=amount, idempotency_key=key or f"test-grant:{user.pk}:{amount}")


@pytest.fixture
def funded_user(user):
    give_credits(user, 100)
    return user


@pytest.fixture
def broker(celery_broker):
    """The jobs queue, emptied before and after, on each broker in turn (Redis, RabbitMQ)."""
    purge_queues("jobs")
    yield celery_app
    purge_queues("jobs")


@pytest.fixture
def redis_broker():
    """The jobs queue on the test Redis only, emptied before and after (for a test that asks for
    it conditionally: a parametrized fixture cannot be requested that way)."""
    purge_queues("jobs")
    yield celery_app
    purge_queues("jobs")


@pytest.fixture
def drop_other_connections():
    """Worker threads keep their own connections open; end them so the test database can be
    flushed and dropped."""
    yield
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
