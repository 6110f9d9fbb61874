import threading

import pytest
from django.db import connection

from accounts.models import User
from tests.conftest import assert_error, client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/users/me/progress"


def test_progress_adds_time_keeps_the_maximum_step_and_records_the_last(auth_client, user):
    auth_client.post(URL, {"time_spent_delta": 60, "step": 7}, format="json")

    response = auth_client.post(URL, {"time_spent_delta": 30, "step": 3}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["time_spent"], body["max_step_reached"], body["last_session_final_step"]) == (90, 7, 3)
    user.refresh_from_db()
    assert (user.time_spent, user.max_step_reached, user.last_session_final_step) == (90, 7, 3)


def test_progress_raises_the_maximum_when_a_higher_step_arrives(auth_client):
    auth_client.post(URL, {"time_spent_delta": 0, "step": 2}, format="json")

    assert (
        auth_client.post(URL, {"time_spent_delta": 0, "step": 9}, format="json").json()["max_step_reached"]
        == 9
    )


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "time_spent_delta"),
        ({"time_spent_delta": 5}, "step"),
        ({"time_spent_delta": -1, "step": 1}, "time_spent_delta"),
        ({"time_spent_delta": 10, "step": -1}, "step"),
        ({"time_spent_delta": 10**12, "step": 1}, "time_spent_delta"),
        ({"time_spent_delta": "ten", "step": 1}, "time_spent_delta"),
        ({"time_spent_delta": 1.5, "step": 1}, "time_spent_delta"),
        ({"time_spent_delta": {"a": 1}, "step": 1}, "time_spent_delta"),
        ({"time_spent_delta": 1, "step": None}, "step"),
    ],
)
def test_progress_refuses_bad_input_and_changes_nothing(auth_client, user, payload, field):
    before = User.objects.values().get(pk=user.pk)

    error = assert_error(auth_client.post(URL, payload, format="json"), 400, "validation_error")

    assert field in error["fields"]
    assert User.objects.values().get(pk=user.pk) == before


def test_progress_anonymous_is_a_401(api_client):
    assert_error(api_client.post(URL, {"time_spent_delta": 1, "step": 1}, format="json"), 401)


def test_progress_of_one_user_leaves_others_alone(auth_client, other_user):
    auth_client.post(URL, {"time_spent_delta": 50, "step": 5}, format="json")

    other_user.refresh_from_db()
    assert (other_user.time_spent, other_user.max_step_reached) == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_concurrent_progress_calls_lose_no_time_and_keep_the_maximum_step():
    # given one user reporting from eight tabs at once
    user = UserFactory()
    steps = [3, 9, 1, 4, 8, 2, 7, 5]
    barrier = threading.Barrier(len(steps))
    statuses = []

    def report(step):
        try:
            client = client_for(user)
            barrier.wait()
            for _ in range(5):
                statuses.append(
                    client.post(URL, {"time_spent_delta": 10, "step": step}, format="json").status_code
                )
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=report, args=(s,)) for s in steps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then
    assert statuses == [200] * 40
    user.refresh_from_db()
    assert user.time_spent == 10 * 40
    assert user.max_step_reached == 9
    assert user.last_session_final_step in steps
