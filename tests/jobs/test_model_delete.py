"""Imported models: list, read, and DELETE /api/models/<job_id>, which soft-deletes the model,
deletes its files and gives its slot back exactly once."""

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from jobs import file_services, services
from jobs.models import Job, JobFile, Project
from jobs.services import models3d
from tests.conftest import assert_error, client_for
from tests.factories import UserFactory
from tests.jobs.model_helpers import SPHERE, export_via_api, import_model, mesh_bytes, run_all
from tests.jobs.test_concurrency import run_concurrently

pytestmark = pytest.mark.django_db


def import_request(client):
    upload = SimpleUploadedFile("s.stl", mesh_bytes(SPHERE, "stl"))
    return client.post("/api/jobs", {"kind": "model_import", "input": upload}, format="multipart")


def models_used(user) -> int:
    return User.objects.get(pk=user.pk).models_used


def test_deleting_a_model_gives_its_slot_back_and_hides_it(user, auth_client):
    # given: a free user at the limit (5 of 5)
    User.objects.filter(pk=user.pk).update(models_used=4, model_limit=5)
    model = import_model(user)
    assert models_used(user) == 5
    assert_error(import_request(auth_client), 403, "model_limit_reached")
    # when: the model is deleted
    response = auth_client.delete(f"/api/models/{model.pk}")
    # then: 204, one slot free, the model gone from /api/models but its job kept in the history
    assert response.status_code == 204 and response.content == b""
    assert models_used(user) == 4
    model.refresh_from_db()
    assert model.deleted_at is not None and model.holds_model_slot is False
    assert auth_client.get("/api/models").json()["count"] == 0
    assert_error(auth_client.get(f"/api/models/{model.pk}"), 404, "not_found")
    assert auth_client.get(f"/api/jobs/{model.pk}").status_code == 200
    # and the freed slot takes a new import
    assert import_request(auth_client).status_code == 201
    assert models_used(user) == 5


def test_deleting_it_again_is_a_404_and_gives_nothing_back(user, auth_client):
    model = import_model(user)
    import_model(user)
    assert auth_client.delete(f"/api/models/{model.pk}").status_code == 204
    assert_error(auth_client.delete(f"/api/models/{model.pk}"), 404, "not_found")
    assert models_used(user) == 1


def test_another_users_model_is_a_404_and_stays(user, other_user, other_client):
    model = import_model(user)
    for response in (
        other_client.delete(f"/api/models/{model.pk}"),
        other_client.get(f"/api/models/{model.pk}"),
    ):
        assert_error(response, 404, "not_found")
    model.refresh_from_db()
    assert model.deleted_at is None and model.holds_model_slot
    assert models_used(user) == 1 and models_used(other_user) == 0


def test_a_job_that_is_not_a_model_or_does_not_exist_is_a_404(funded_user, auth_client):
    user = funded_user
    batch = services.job_create(user=user, kind_code="account_batch")
    for job_id in (batch.pk, uuid.uuid4()):
        assert_error(auth_client.delete(f"/api/models/{job_id}"), 404, "not_found")
    batch.refresh_from_db()
    assert batch.deleted_at is None


def test_an_import_still_running_is_a_409_and_keeps_its_slot(user, auth_client):
    model = import_model(user, run=False)
    assert_error(auth_client.delete(f"/api/models/{model.pk}"), 409, "invalid_transition")
    model.refresh_from_db()
    assert model.deleted_at is None and model.holds_model_slot and models_used(user) == 1


def test_a_failed_import_can_be_deleted_without_giving_a_slot_back_twice(user, auth_client):
    failed = import_model(user, b"solid nonsense\nnot a mesh\n", name="broken.stl", run=False)
    assert run_all() == ["failed"]
    import_model(user)
    assert models_used(user) == 1  # the failure already gave its slot back
    assert auth_client.delete(f"/api/models/{failed.pk}").status_code == 204
    assert models_used(user) == 1


def test_a_deleted_model_leaves_its_projects_and_cannot_be_exported(user, auth_client):
    model, kept = import_model(user), import_model(user)
    project = auth_client.post(
        "/api/projects", {"name": "P", "models": [str(model.pk), str(kept.pk)]}, format="json"
    ).json()
    auth_client.delete(f"/api/models/{model.pk}")
    assert auth_client.get(f"/api/projects/{project['id']}").json()["models"] == [str(kept.pk)]
    response = auth_client.post(
        "/api/jobs",
        {"kind": "model_export", "params": {"format": "stl", "source_job_id": str(model.pk)}},
        format="json",
    )
    assert_error(response, 404)
    assert Project.objects.get(pk=project["id"]).models.count() == 2  # the link stays, unseen


def test_exports_made_before_the_delete_stay_downloadable(user, auth_client):
    model = import_model(user)
    export = export_via_api(auth_client, model, format="obj")
    auth_client.delete(f"/api/models/{model.pk}")
    assert auth_client.get(f"/api/exports/{export.pk}/download").status_code == 200


def test_deleting_a_model_deletes_its_files_and_frees_their_quota(
    user, auth_client, django_capture_on_commit_callbacks
):
    model, kept = import_model(user), import_model(user, name="kept.stl")
    gone = list(JobFile.objects.filter(job=model))
    assert gone and file_services.storage_used(user_id=user.pk) == sum(
        f.size for f in JobFile.objects.filter(job__user=user)
    )
    used_by_kept = sum(f.size for f in JobFile.objects.filter(job=kept))

    with django_capture_on_commit_callbacks(execute=True):
        assert auth_client.delete(f"/api/models/{model.pk}").status_code == 204

    assert file_services.storage_used(user_id=user.pk) == used_by_kept
    assert not JobFile.objects.filter(job=model).exists()
    assert not any(f.file.storage.exists(f.file.name) for f in gone)
    assert auth_client.get(f"/api/jobs/{model.pk}").json()["files"] == []
    assert auth_client.get(f"/api/models/{kept.pk}").status_code == 200


def test_a_deleted_models_upload_still_used_by_another_job_stays_stored(
    user, django_capture_on_commit_callbacks
):
    model = import_model(user)
    upload = JobFile.objects.get(job=model, role="input")
    sharer = services.job_create(user=user, kind_code="model_import", input_job_file=upload)

    with django_capture_on_commit_callbacks(execute=True):
        models3d.model_delete(user=user, job_id=model.pk)

    assert not JobFile.objects.filter(job=model).exists()
    assert JobFile.objects.get(job=sharer).file.name == upload.file.name
    assert upload.file.storage.exists(upload.file.name)


def test_the_database_refuses_a_deleted_model_that_still_holds_a_slot(user):
    model = import_model(user)
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(pk=model.pk).update(deleted_at=timezone.now())


def test_models_list_and_detail_show_what_the_import_measured(user, auth_client, other_user):
    model = import_model(user)
    import_model(other_user)
    listed = auth_client.get("/api/models").json()
    assert listed["count"] == 1
    shown = listed["results"][0]
    assert shown == auth_client.get(f"/api/models/{model.pk}").json()
    assert (shown["id"], shown["name"], shown["status"], shown["file_type"]) == (
        str(model.pk),
        "sphere.stl",
        "completed",
        "stl",
    )
    assert (shown["vertex_count"], shown["face_count"], shown["is_valid"]) == (42, 80, True)


def test_the_models_list_is_paginated_with_a_constant_number_of_queries(user, auth_client):
    import_model(user)
    auth_client.get("/api/models")  # warm: a token's first request also reads its user row
    with CaptureQueriesContext(connection) as one:
        auth_client.get("/api/models")
    for _ in range(3):
        import_model(user)
    with CaptureQueriesContext(connection) as four:
        page = auth_client.get("/api/models?page_size=2")
    assert len(four.captured_queries) == len(one.captured_queries)
    assert page.json()["count"] == 4 and len(page.json()["results"]) == 2 and page.json()["next"]


def test_models_need_authentication(api_client):
    for response in (
        api_client.get("/api/models"),
        api_client.get(f"/api/models/{uuid.uuid4()}"),
        api_client.delete(f"/api/models/{uuid.uuid4()}"),
    ):
        assert_error(response, 401)


def test_a_malformed_model_id_is_a_404_envelope(auth_client):
    assert_error(auth_client.delete("/api/models/not-a-uuid"), 404)
    assert_error(auth_client.delete("/api/models/%00"), 404)


@pytest.mark.django_db(transaction=True)
def test_concurrent_deletes_of_one_model_give_back_exactly_one_slot():
    # given: a user with three models
    user = UserFactory()
    model = import_model(user)
    import_model(user)
    import_model(user)
    assert models_used(user) == 3
    clients = [client_for(user) for _ in range(8)]

    # when: eight requests delete the same model at once
    codes = run_concurrently(8, lambda i: clients[i].delete(f"/api/models/{model.pk}").status_code)

    # then: one deleted it, the others found nothing, and exactly one slot came back
    assert sorted(codes) == [204] + [404] * 7
    assert models_used(user) == 2
    model.refresh_from_db()
    assert model.deleted_at is not None and not model.holds_model_slot


@pytest.mark.django_db(transaction=True)
def test_concurrent_deletes_of_different_models_each_give_one_slot_back():
    user = UserFactory()
    models = [import_model(user) for _ in range(4)]
    clients = [client_for(user) for _ in range(4)]
    codes = run_concurrently(4, lambda i: clients[i].delete(f"/api/models/{models[i].pk}").status_code)
    assert codes == [204] * 4
    assert models_used(user) == 0
