"""Every path that locks a job, the user row or the balance row takes them in the documented
order (docs/ARCHITECTURE.md, "Lock order": job → user → subscription → balance), and locks the
user row FOR NO KEY UPDATE: asserted on the statements each path really runs
(tests/flows/lock_order.py). A path taking them the other way round can deadlock with any other."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from accounts.models import User
from jobs.models import Job, JobKind
from tests.conftest import client_for
from tests.factories import UserFactory
from tests.flows.concurrency import drain_engine
from tests.flows.lock_order import LockRecorder
from tests.jobs.conftest import give_credits
from tests.jobs.model_helpers import SPHERE, mesh_bytes

STL = mesh_bytes(SPHERE, "stl")
BROKEN_STL = b"solid nonsense\nthis is not a mesh at all\n"


@pytest.fixture
def importer(reference_data):
    JobKind.objects.filter(code="model_import").update(credits_per_unit=2)
    user = UserFactory()
    User.objects.filter(pk=user.pk).update(model_limit=10)
    give_credits(user, 100)
    return user, client_for(user)


def _import(client, data=STL):
    response = client.post(
        "/api/jobs", {"kind": "model_import", "input": SimpleUploadedFile("m.stl", data)}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _recorded(action) -> LockRecorder:
    with LockRecorder() as recorder:
        action()
    recorder.check()
    return recorder


@pytest.mark.django_db(transaction=True)
def test_creating_a_priced_import_locks_the_user_row_then_the_balance(importer):
    _, client = importer
    recorder = _recorded(lambda: _import(client))
    assert ["user", "balance"] in recorder.sequences()


@pytest.mark.django_db(transaction=True)
def test_cancelling_an_import_locks_job_then_user_then_balance(importer):
    _, client = importer
    job_id = _import(client)
    recorder = _recorded(lambda: client.post(f"/api/jobs/{job_id}/cancel"))
    assert Job.objects.get(pk=job_id).status == "cancelled"
    assert ["job", "user", "balance"] in recorder.sequences()


@pytest.mark.django_db(transaction=True)
def test_the_engine_failing_an_import_locks_job_then_user_then_balance(importer):
    _, client = importer
    job_id = _import(client, BROKEN_STL)
    recorder = _recorded(drain_engine)
    assert Job.objects.get(pk=job_id).status == "failed"
    assert ["job", "user", "balance"] in recorder.sequences()


@pytest.mark.django_db(transaction=True)
def test_retrying_a_failed_import_locks_the_failed_job_then_user_then_balance(importer):
    _, client = importer
    job_id = _import(client, BROKEN_STL)
    drain_engine()
    recorder = _recorded(lambda: client.post(f"/api/jobs/{job_id}/retry"))
    assert Job.objects.filter(retry_of_id=job_id).exists()
    assert ["job", "user", "balance"] in recorder.sequences()


@pytest.mark.django_db(transaction=True)
def test_deleting_a_model_locks_the_job_then_the_user_row(importer):
    user, client = importer
    job_id = _import(client)
    drain_engine()
    recorder = _recorded(lambda: client.delete(f"/api/models/{job_id}"))
    user.refresh_from_db()
    assert user.models_used == 0
    assert ["job", "user"] in recorder.sequences()


@pytest.mark.django_db(transaction=True)
def test_adding_a_file_to_a_job_locks_the_job_then_the_user_row(importer):
    _, client = importer
    job_id = client.post("/api/jobs", {"kind": "account_batch"}, format="json").json()["id"]
    upload = SimpleUploadedFile("extra.stl", STL)

    def add():
        response = client.post(
            f"/api/jobs/{job_id}/files", {"file": upload, "role": "input"}, format="multipart"
        )
        assert response.status_code == 201, response.content

    recorder = _recorded(add)
    assert ["job", "user"] in recorder.sequences()


@pytest.mark.django_db
def test_the_recorder_sees_a_wrong_order_and_a_user_row_locked_for_update():
    recorder = LockRecorder()
    with transaction.atomic():
        recorder.note('UPDATE "credits_creditbalance" SET "balance" = 1 WHERE "user_id" = 1')
        recorder.note('SELECT "accounts_user"."id" FROM "accounts_user" WHERE "id" = 1 FOR NO KEY UPDATE')
    with pytest.raises(AssertionError, match="lock order broken"):
        recorder.check()
    recorder = LockRecorder()
    recorder.note('SELECT "accounts_user"."id" FROM "accounts_user" WHERE "id" = 1 FOR UPDATE')
    with pytest.raises(AssertionError, match="FOR UPDATE"):
        recorder.check()
