import pytest

from config.models import IdempotencyRecord
from credits.models import CreditPackage, Payment
from jobs.models import Job
from tests.conftest import assert_error, client_for
from tests.factories import UserFactory
from tests.jobs.conftest import give_credits
from tests.jobs.test_concurrency import run_concurrently


def _package() -> CreditPackage:
    return CreditPackage.objects.get(name="Popular Pack")


def _buy(client, key, provider="truemoney"):
    body = {"package_id": str(_package().id), "provider": provider}
    return client.post("/api/credits/purchases", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_a_retried_purchase_answers_the_first_payment_and_creates_nothing(auth_client, user):
    first = _buy(auth_client, "k-1")
    assert first.status_code == 201, first.content

    again = _buy(auth_client, "k-1")

    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Payment.objects.filter(user=user).count() == 1


@pytest.mark.django_db
def test_another_body_under_the_same_key_is_409_and_changes_nothing(auth_client, user):
    assert _buy(auth_client, "k-2").status_code == 201

    assert_error(_buy(auth_client, "k-2", provider="promptpay"), 409, "idempotency_key_reused")
    assert Payment.objects.filter(user=user).count() == 1


@pytest.mark.django_db
def test_keys_are_per_user_and_a_refusal_is_not_stored(auth_client, user, other_user):
    assert _buy(client_for(other_user), "k-3").status_code == 201
    assert _buy(auth_client, "k-3").status_code == 201
    refused = auth_client.post("/api/jobs", {"kind": "nope"}, format="json", HTTP_IDEMPOTENCY_KEY="k-4")
    assert refused.status_code == 400
    assert Payment.objects.count() == 2
    assert not IdempotencyRecord.objects.filter(key="k-4").exists()


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_retries_of_a_job_create_make_one_job_and_one_charge():
    user = UserFactory()
    give_credits(user, 50)
    clients = [client_for(user) for _ in range(20)]
    body = {"kind": "account_batch", "requested_count": 3}

    responses = run_concurrently(
        20, lambda i: clients[i].post("/api/jobs", body, format="json", HTTP_IDEMPOTENCY_KEY="same")
    )

    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert Job.objects.filter(user=user).count() == 1
    assert Job.objects.get(user=user).credits_charged == 3
