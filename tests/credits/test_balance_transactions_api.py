import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from credits.models import CreditTransaction
from credits.services import credits_charge, credits_grant, credits_refund
from tests.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


def _history(user):
    credits_grant(user=user, amount=10, idempotency_key=f"{user.pk}:buy", type="purchase")
    credits_grant(user=user, amount=2, idempotency_key=f"{user.pk}:bonus")
    credits_charge(user=user, amount=5, idempotency_key=f"{user.pk}:c1", job_id=uuid.uuid4())
    credits_refund(user=user, amount=1, idempotency_key=f"{user.pk}:r1")


def test_balance_shows_lifetime_purchased_spent_refunded(user, auth_client):
    _history(user)

    response = auth_client.get("/api/credits/balance")

    assert response.status_code == 200
    assert response.json() == {
        "balance": 8,
        "lifetime_purchased": 10,
        "lifetime_spent": 5,
        "lifetime_refunded": 1,
        "lifetime_bonus": 2,
        "lifetime_adjusted": 0,
    }


def test_balance_reads_the_balance_row_and_never_the_ledger(user, auth_client):
    _history(user)
    credits_grant(user=user, amount=-3, idempotency_key=f"{user.pk}:adj", type="adjustment")

    with CaptureQueriesContext(connection) as queries:
        response = auth_client.get("/api/credits/balance")

    assert response.json()["balance"] == 5 and response.json()["lifetime_adjusted"] == -3
    ledger = CreditTransaction._meta.db_table
    assert queries.captured_queries and not [q for q in queries.captured_queries if ledger in q["sql"]]


def test_balance_of_a_new_user_is_zero(auth_client):
    assert auth_client.get("/api/credits/balance/").json()["balance"] == 0


def test_balance_requires_authentication(api_client):
    assert_error(api_client.get("/api/credits/balance"), 401, "not_authenticated")


def test_users_me_reads_the_credit_balance(user, auth_client):
    credits_grant(user=user, amount=7, idempotency_key="g")
    assert auth_client.get("/api/users/me").json()["credit_balance"] == 7


def test_transactions_list_only_the_callers_rows_newest_first(
    user, other_user, auth_client, django_assert_max_num_queries
):
    _history(user)
    _history(other_user)

    with django_assert_max_num_queries(4):
        response = auth_client.get("/api/credits/transactions")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert [r["type"] for r in body["results"]] == ["refund", "usage", "bonus", "purchase"]
    assert [r["balance_after"] for r in body["results"]] == [8, 7, 12, 10]
    assert "idempotency_key" not in body["results"][0]


def test_transactions_query_count_does_not_grow_with_rows(user, auth_client, django_assert_max_num_queries):
    for i in range(30):
        credits_grant(user=user, amount=1, idempotency_key=f"g{i}")
    with django_assert_max_num_queries(4):
        assert auth_client.get("/api/credits/transactions?page_size=100").json()["count"] == 30


def test_transactions_filter_by_type(user, auth_client):
    _history(user)

    body = auth_client.get("/api/credits/transactions?type=usage").json()

    assert body["count"] == 1 and body["results"][0]["amount"] == -5


def test_transactions_filter_by_inclusive_utc_date_range(user):
    # The last second of a UTC day, pinned: "today" is the day the rows were written, whenever
    # the test runs (a wall-clock "today" read after the writes would miss them past midnight).
    with time_machine.travel(datetime(2026, 3, 2, 23, 59, 59, tzinfo=UTC), tick=False):
        auth_client = client_for(user)  # minted at the pinned time
        _history(user)
        today = date(2026, 3, 2)
        yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)

        assert auth_client.get(f"/api/credits/transactions?from={today}&to={today}").json()["count"] == 4
        assert auth_client.get(f"/api/credits/transactions?from={tomorrow}").json()["count"] == 0
        assert auth_client.get(f"/api/credits/transactions?to={yesterday}").json()["count"] == 0


@pytest.mark.parametrize("query", ["type=gift", "from=yesterday", "to=2026-13-01", "from=" + "9" * 5000])
def test_transactions_bad_filters_are_a_400_envelope(auth_client, query):
    assert_error(auth_client.get(f"/api/credits/transactions?{query}"), 400, "validation_error")


def test_transactions_page_size_is_capped_at_100(user, auth_client):
    credits_grant(user=user, amount=1, idempotency_key="g")
    body = auth_client.get("/api/credits/transactions?page_size=100000").json()
    assert body["count"] == 1


def test_transactions_require_authentication(api_client):
    assert_error(api_client.get("/api/credits/transactions"), 401)


def test_ledger_rows_are_immutable_through_the_orm(user):
    from django.db import DatabaseError, transaction

    row = credits_grant(user=user, amount=1, idempotency_key="g")
    row.amount = 50
    with pytest.raises(DatabaseError), transaction.atomic():
        row.save()
    assert CreditTransaction.objects.get(pk=row.pk).amount == 1


def test_transaction_detail_of_the_caller(user, auth_client):
    row = credits_grant(user=user, amount=3, idempotency_key="g")
    response = auth_client.get(f"/api/credits/transactions/{row.pk}")
    assert response.status_code == 200
    assert response.json()["amount"] == 3 and response.json()["balance_after"] == 3


def test_another_users_transaction_is_404(other_user, auth_client):
    row = credits_grant(user=other_user, amount=3, idempotency_key="g")
    assert_error(auth_client.get(f"/api/credits/transactions/{row.pk}/"), 404, "not_found")


def test_transaction_detail_requires_authentication(api_client, user):
    row = credits_grant(user=user, amount=3, idempotency_key="g")
    assert_error(api_client.get(f"/api/credits/transactions/{row.pk}"), 401)


def test_service_api_key_is_not_a_user_for_credits_endpoints(user):
    from rest_framework.test import APIClient

    from accounts.services import api_key_create

    _, key = api_key_create(name="worker", scopes=["jobs:report"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    response = client.get("/api/credits/balance")
    assert response.status_code in (401, 403)
    assert_error(response, response.status_code)
