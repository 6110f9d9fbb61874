import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from accounts.models import User
from credits.models import CreditBalance, CreditTransaction
from jobs.models import Job
from tests.conftest import client_for
from tests.factories import UserFactory
from tests.jobs.conftest import give_credits

CUBE_OBJ = b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"


def run_concurrently(n: int, fn) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def target(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_free_user_at_4_of_5_sending_10_concurrent_imports_gets_exactly_one_accepted():
    user = UserFactory()
    User.objects.filter(pk=user.pk).update(models_used=4, model_limit=5)
    clients = [client_for(user) for _ in range(10)]

    def submit(i):
        upload = SimpleUploadedFile(f"m{i}.obj", CUBE_OBJ)
        return (
            clients[i]
            .post("/api/jobs", {"kind": "model_import", "input": upload}, format="multipart")
            .status_code
        )

    codes = run_concurrently(10, submit)
    assert sorted(codes) == [201] + [403] * 9
    user.refresh_from_db()
    assert user.models_used == 5
    assert Job.objects.filter(user=user).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_jobs_beyond_the_balance_never_make_it_negative():
    user = UserFactory()
    give_credits(user, 5)
    clients = [client_for(user) for _ in range(12)]
    codes = run_concurrently(
        12,
        lambda i: (
            clients[i]
            .post("/api/jobs", {"kind": "account_batch", "requested_count": 1}, format="json")
            .status_code
        ),
    )
    assert sorted(codes) == [201] * 5 + [402] * 7
    assert CreditBalance.objects.get(user=user).balance == 0
    assert Job.objects.filter(user=user).count() == 5
    assert CreditTransaction.objects.filter(user=user, type="usage").count() == 5


@pytest.mark.django_db(transaction=True)
def test_the_same_stats_report_sent_concurrently_charges_once():
    user = UserFactory()
    give_credits(user, 50)
    clients = [client_for(user) for _ in range(8)]
    body = {"job_id": "race-1", "requested_count": 5, "successful_count": 1, "status": "processing"}
    codes = run_concurrently(8, lambda i: clients[i].patch("/api/stats", body, format="json").status_code)
    assert codes == [200] * 8
    assert Job.objects.filter(external_id="race-1").count() == 1
    assert CreditBalance.objects.get(user=user).balance == 45


@pytest.mark.django_db(transaction=True)
def test_reports_by_uuid_and_by_external_id_sent_concurrently_make_one_job_and_one_charge():
    user = UserFactory()
    give_credits(user, 50)
    created = client_for(user).post(
        "/api/jobs", {"kind": "account_batch", "requested_count": 5, "external_id": "race-2"}, format="json"
    )
    assert created.status_code == 201, created.content
    job_uuid = created.json()["id"]
    clients = [client_for(user) for _ in range(8)]

    def report(i):
        body = {
            "job_id": job_uuid if i % 2 else "race-2",
            "requested_count": 5,
            "successful_count": i % 4,
            "status": "processing" if i < 6 else "completed",
        }
        return clients[i].patch("/api/stats", body, format="json").status_code

    assert run_concurrently(8, report) == [200] * 8
    job = Job.objects.get(user=user)
    assert str(job.pk) == job_uuid and job.status == "completed" and job.credits_charged == 5
    assert CreditTransaction.objects.filter(job_id=job.pk, type="usage").count() == 1
    assert CreditBalance.objects.get(user=user).balance == 45
