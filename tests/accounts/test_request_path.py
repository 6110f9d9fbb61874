"""The lighter request path keeps its security properties (issue 14): the JWT user-row cache
never lets a deactivated or soft-deleted user's token work for more than seconds, and the
one-round-trip throttles still refuse the N+1th request of a window, against the real Redis."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.throttling import UserRateThrottle as DRFUserRateThrottle

from accounts.authentication import user_row_cache
from accounts.models import User
from accounts.services import user_soft_delete
from tests.conftest import assert_error, client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

BALANCE = "/api/credits/balance"
USER_TABLE = User._meta.db_table


@pytest.fixture(autouse=True)
def _empty_user_cache():
    user_row_cache.clear()
    yield
    user_row_cache.clear()


def _user_row_reads(client) -> tuple[int, int]:
    """(status, how many queries read the user table) of one GET of the balance."""
    with CaptureQueriesContext(connection) as queries:
        status = client.get(BALANCE).status_code
    return status, sum(f'FROM "{USER_TABLE}"' in q["sql"] for q in queries.captured_queries)


def test_a_token_reads_its_user_row_once_then_reuses_it(user):
    client = client_for(user)

    assert _user_row_reads(client) == (200, 1)
    assert _user_row_reads(client) == (200, 0)


@pytest.mark.parametrize(
    "close",
    [
        pytest.param(lambda u: setattr(u, "is_active", False) or u.save(), id="deactivated-save"),
        pytest.param(lambda u: user_soft_delete(user=u), id="soft-delete-service"),
        pytest.param(lambda u: u.delete(), id="deleted"),
    ],
)
def test_a_closed_account_is_refused_by_the_next_request(user, close):
    client = client_for(user)
    assert _user_row_reads(client) == (200, 1)  # now cached

    close(user)

    assert_error(client.get(BALANCE), 401)


def test_a_change_made_elsewhere_is_seen_within_the_cache_ttl(user, settings):
    # A queryset UPDATE sends no signal: it stands for another process (a gunicorn worker,
    # Celery, psql) deactivating the user. Only the TTL bounds how long this process misses it.
    settings.AUTH_USER_CACHE_SECONDS = 5
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        client = client_for(user)
        assert client.get(BALANCE).status_code == 200
        User.objects.filter(pk=user.pk).update(is_active=False, deleted_at=timezone.now())

        traveller.shift(timedelta(seconds=4.9))
        assert client.get(BALANCE).status_code == 200  # the bounded staleness, made visible

        traveller.shift(timedelta(seconds=0.2))
        assert_error(client.get(BALANCE), 401)


def test_with_the_cache_off_every_request_reads_the_user(user, settings):
    settings.AUTH_USER_CACHE_SECONDS = 0
    client = client_for(user)

    assert _user_row_reads(client) == (200, 1)
    assert _user_row_reads(client) == (200, 1)


def test_views_get_their_own_user_instance(user):
    client = client_for(user)
    client.get(BALANCE)

    first, second = user_row_cache.get(user.pk), user_row_cache.get(user.pk)

    assert first == second and first is not second
    first.name = "changed in one request"
    assert user_row_cache.get(user.pk).name == user.name


@pytest.fixture
def user_rate_of_3(monkeypatch):
    # DRF binds THROTTLE_RATES on the class at import time (see tests/accounts/test_login.py).
    monkeypatch.setattr(
        DRFUserRateThrottle, "THROTTLE_RATES", {**DRFUserRateThrottle.THROTTLE_RATES, "user": "3/min"}
    )


def test_the_user_throttle_refuses_the_fourth_request_of_a_minute_with_the_envelope(user, user_rate_of_3):
    client, other = client_for(user), client_for(UserFactory())
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for _ in range(3):
            assert client.get(BALANCE).status_code == 200

        response = client.get(BALANCE)

        error = assert_error(response, 429, "throttled")
        assert 0 < error["retry_after"] <= 60 and "Retry-After" in response.headers
        assert other.get(BALANCE).status_code == 200  # a bucket per user
        # a refused request does not count; the window slides
        traveller.shift(timedelta(seconds=59))
        assert_error(client.get(BALANCE), 429, "throttled")
        traveller.shift(timedelta(seconds=2))
        assert client.get(BALANCE).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_cannot_share_the_last_slots(user_rate_of_3):
    # DRF's get-then-set let two racing requests both take the last slot; the script cannot.
    user = UserFactory()
    client_for(user).get("/api/users/me")  # the rate counts this one: 2 slots left
    barrier = threading.Barrier(12)
    statuses = []

    def hit():
        client = client_for(user)
        barrier.wait()
        statuses.append(client.get(BALANCE).status_code)
        connection.close()

    threads = [threading.Thread(target=hit) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] * 2 + [429] * 10
