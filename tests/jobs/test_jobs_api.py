import hashlib
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import User
from credits.models import CreditTransaction
from credits.selectors import balance_get
from jobs import services
from jobs.models import Job, JobFile, JobKind
from tests.conftest import assert_error, client_for
from tests.factories import UserFactory
from tests.jobs.conftest import give_credits
from tests.jobs.factories import JobFactory

pytestmark = pytest.mark.django_db

CUBE_OBJ = b"""v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 0 0 1\nv 1 0 1\nv 1 1 1\nv 0 1 1
f 1 3 2\nf 1 4 3\nf 5 6 7\nf 5 7 8\nf 1 2 6\nf 1 6 5\nf 2 3 7\nf 2 7 6\nf 3 4 8\nf 3 8 7\nf 4 1 5\nf 4 5 8
"""


def obj_upload(name="cube.obj", data=CUBE_OBJ):
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_create_job_charges_credits_per_unit_times_requested_count(auth_client, funded_user):
    response = auth_client.post(
        "/api/jobs",
        {
            "kind": "video_render",
            "requested_count": 3,
            "params": {"template": "intro"},
            "external_id": "vid-1",
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued" and body["credits_charged"] == 3 and body["external_id"] == "vid-1"
    assert balance_get(user=funded_user) == 97
    assert CreditTransaction.objects.filter(idempotency_key=f"job:{body['id']}:charge").count() == 1


@pytest.mark.parametrize("with_input", [False, True])
def test_create_answers_the_job_exactly_as_a_read_of_it_does(auth_client, funded_user, with_input):
    # without an input file the 201 is built from the written job, not read back: same body
    payload = {"kind": "video_render", "requested_count": 2, "params": {"a": [1, "x"]}, "priority": 3}
    if with_input:
        payload = {"kind": "model_import", "input": obj_upload()}
    created = auth_client.post("/api/jobs", payload, format="multipart" if with_input else "json")
    assert created.status_code == 201, created.content

    read = auth_client.get(f"/api/jobs/{created.json()['id']}")

    assert created.json() == read.json()
    assert len(read.json()["files"]) == (1 if with_input else 0)


def test_create_job_with_trailing_slash_works_too(auth_client, funded_user):
    response = auth_client.post("/api/jobs/", {"kind": "account_batch"})
    assert response.status_code == 201


def test_insufficient_credits_is_402_and_nothing_persists(auth_client, user):
    give_credits(user, 2)
    response = auth_client.post("/api/jobs", {"kind": "account_batch", "requested_count": 5})
    assert_error(response, 402, "insufficient_credits")
    assert Job.objects.count() == 0
    assert balance_get(user=user) == 2


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "nope",
        {"kind": "no_such_kind"},
        {"kind": "account_batch", "requested_count": -1},
        {"kind": "account_batch", "requested_count": "many"},
        {"kind": "account_batch", "params": [1]},
        {"kind": "account_batch", "priority": 10_000},
        {"kind": "x" * 10_000},
        {"kind": "account_batch", "external_id": "has spaces"},
        {"kind": "model_export", "params": {}},
        {"kind": "model_export", "params": {"format": "stl", "source_job_id": "not-a-uuid"}},
    ],
)
def test_create_job_with_bad_input_is_400_and_changes_nothing(auth_client, funded_user, payload):
    response = auth_client.post("/api/jobs", payload, format="json")
    assert_error(response, 400)
    assert Job.objects.count() == 0


def test_an_inactive_kind_is_refused_like_an_unknown_one(auth_client, funded_user):
    JobKind.objects.filter(code="account_batch").update(is_active=False)

    response = auth_client.post("/api/jobs", {"kind": "account_batch"}, format="json")

    assert_error(response, 400, "validation_error")
    assert "kind" in response.json()["error"]["fields"]
    assert Job.objects.count() == 0 and balance_get(user=funded_user) == 100


def test_create_job_with_malformed_json_is_400(auth_client, funded_user):
    response = auth_client.generic("POST", "/api/jobs", b"{not json", content_type="application/json")
    assert_error(response, 400)


def test_create_job_anonymous_is_401(api_client):
    assert_error(api_client.post("/api/jobs", {"kind": "account_batch"}), 401)
    assert_error(api_client.get("/api/jobs"), 401)


def test_duplicate_external_id_is_409(auth_client, funded_user):
    assert auth_client.post("/api/jobs", {"kind": "account_batch", "external_id": "same"}).status_code == 201
    assert_error(auth_client.post("/api/jobs", {"kind": "account_batch", "external_id": "same"}), 409)
    assert balance_get(user=funded_user) == 99


def test_model_import_requires_an_input_file(auth_client, user):
    response = auth_client.post("/api/jobs", {"kind": "model_import"}, format="json")
    assert_error(response, 400, "validation_error")


def test_model_import_multipart_stores_file_with_size_sha256_and_prefix(auth_client, user):
    response = auth_client.post(
        "/api/jobs",
        {"kind": "model_import", "params": '{"name": "cube"}', "input": obj_upload()},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["params"] == {"name": "cube"} and body["credits_charged"] == 0
    (stored,) = body["files"]
    assert stored["role"] == "input" and stored["size"] == len(CUBE_OBJ)
    assert stored["sha256"] == hashlib.sha256(CUBE_OBJ).hexdigest()
    assert stored["content_type"] == "model/obj"
    assert JobFile.objects.get().file.name.startswith(f"models/{user.pk}/")
    user.refresh_from_db()
    assert user.models_used == 1


def test_model_import_is_refused_with_403_at_the_model_limit(auth_client, user):
    User.objects.filter(pk=user.pk).update(models_used=5, model_limit=5)
    response = auth_client.post(
        "/api/jobs", {"kind": "model_import", "input": obj_upload()}, format="multipart"
    )
    assert_error(response, 403, "model_limit_reached")
    assert Job.objects.count() == 0


def test_upload_with_unsupported_type_or_wrong_content_is_400(auth_client, user):
    bad_ext = SimpleUploadedFile("evil.exe", b"MZ....", content_type="model/obj")
    assert_error(
        auth_client.post("/api/jobs", {"kind": "model_import", "input": bad_ext}, format="multipart"),
        400,
        "validation_error",
    )
    fake_glb = SimpleUploadedFile("model.glb", b"not a gltf", content_type="model/gltf-binary")
    assert_error(
        auth_client.post("/api/jobs", {"kind": "model_import", "input": fake_glb}, format="multipart"),
        400,
        "validation_error",
    )
    assert Job.objects.count() == 0
    user.refresh_from_db()
    assert user.models_used == 0


def test_upload_larger_than_the_limit_is_400(auth_client, user, settings):
    settings.JOBS_MAX_MODEL_BYTES = 100
    big = SimpleUploadedFile("big.obj", b"v 0 0 0\n" * 50)
    assert_error(
        auth_client.post("/api/jobs", {"kind": "model_import", "input": big}, format="multipart"),
        400,
        "validation_error",
    )


def test_list_is_scoped_filtered_and_paginated(auth_client, user, other_user):
    JobFactory.create_batch(3, user=user, status="completed")
    JobFactory(user=user, status="pending")
    JobFactory(user=other_user)
    body = auth_client.get("/api/jobs").json()
    assert body["count"] == 4 and set(body) == {"count", "next", "previous", "results"}
    assert auth_client.get("/api/jobs?status=completed").json()["count"] == 3
    assert auth_client.get("/api/jobs?kind=video_render").json()["count"] == 0
    assert auth_client.get("/api/jobs?page_size=2").json()["next"] is not None


def test_list_filter_by_date_range_counts_only_jobs_created_in_it(auth_client, user):
    old = JobFactory(user=user)
    Job.objects.filter(pk=old.pk).update(created_at="2026-01-15T12:00:00Z")
    JobFactory(user=user)
    body = auth_client.get("/api/jobs?from=2026-01-01&to=2026-01-31").json()
    assert [row["id"] for row in body["results"]] == [str(old.pk)]


@pytest.mark.parametrize("query", ["status=exploded", "from=yesterday", "to=2026-13-45", "page=-1"])
def test_list_with_bad_filters_is_4xx_envelope(auth_client, query):
    response = auth_client.get(f"/api/jobs?{query}")
    assert 400 <= response.status_code < 500
    assert "error" in response.json()


def test_list_query_count_does_not_grow_with_jobs(auth_client, user, django_assert_max_num_queries):
    JobFactory.create_batch(15, user=user)
    with django_assert_max_num_queries(6):
        assert auth_client.get("/api/jobs").status_code == 200


def test_detail_and_external_id_lookup_for_owner_only(auth_client, other_client, funded_user):
    job = services.job_create(user=funded_user, kind_code="account_batch", external_id="ext-77")
    body = auth_client.get(f"/api/jobs/{job.pk}").json()
    assert body["status"] == "queued" and body["progress"] == 0
    assert auth_client.get("/api/job/ext-77").json()["id"] == str(job.pk)
    assert_error(other_client.get(f"/api/jobs/{job.pk}"), 404, "not_found")
    assert_error(other_client.get("/api/job/ext-77"), 404, "not_found")
    assert_error(auth_client.get(f"/api/jobs/{uuid.uuid4()}"), 404)
    assert_error(auth_client.get("/api/jobs/not-a-uuid"), 404)


def test_cancel_refunds_once_and_finished_job_cannot_be_cancelled(auth_client, other_client, funded_user):
    job = services.job_create(user=funded_user, kind_code="account_batch", requested_count=4)
    assert balance_get(user=funded_user) == 96
    assert_error(other_client.post(f"/api/jobs/{job.pk}/cancel"), 404)
    response = auth_client.post(f"/api/jobs/{job.pk}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert balance_get(user=funded_user) == 100
    assert_error(auth_client.post(f"/api/jobs/{job.pk}/cancel"), 409, "invalid_transition")
    assert balance_get(user=funded_user) == 100
    assert CreditTransaction.objects.filter(job_id=job.pk, type="refund").count() == 1


def test_cancelling_a_model_import_gives_the_model_slot_back(auth_client, user):
    response = auth_client.post(
        "/api/jobs", {"kind": "model_import", "input": obj_upload()}, format="multipart"
    )
    auth_client.post(f"/api/jobs/{response.json()['id']}/cancel")
    user.refresh_from_db()
    assert user.models_used == 0


def test_retry_of_failed_job_creates_a_new_charged_job(auth_client, funded_user):
    job = services.job_create(user=funded_user, kind_code="account_batch", requested_count=2)
    services.job_cancel(job=job)
    response = auth_client.post(f"/api/jobs/{job.pk}/retry")
    assert response.status_code == 201
    body = response.json()
    assert body["retry_of"] == str(job.pk) and body["status"] == "queued" and body["credits_charged"] == 2
    assert balance_get(user=funded_user) == 98


def test_retry_of_queued_job_is_409(auth_client, funded_user):
    job = services.job_create(user=funded_user, kind_code="account_batch")
    assert_error(auth_client.post(f"/api/jobs/{job.pk}/retry"), 409, "invalid_transition")


def test_add_file_to_job(auth_client, other_client, funded_user):
    job = services.job_create(user=funded_user, kind_code="video_render")
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    response = auth_client.post(
        f"/api/jobs/{job.pk}/files",
        {"file": SimpleUploadedFile("t.png", png), "role": "thumbnail"},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["sha256"] == hashlib.sha256(png).hexdigest()
    assert JobFile.objects.get().file.name.startswith("thumbnails/")
    mp4 = b"\0\0\0\x18ftypmp42" + b"\0" * 32
    response = auth_client.post(
        f"/api/jobs/{job.pk}/files",
        {"file": SimpleUploadedFile("out.mp4", mp4), "role": "output"},
        format="multipart",
    )
    assert JobFile.objects.get(pk=response.json()["id"]).file.name.startswith("final-videos/")
    assert_error(auth_client.post(f"/api/jobs/{job.pk}/files", {"role": "output"}, format="multipart"), 400)
    assert_error(
        auth_client.post(
            f"/api/jobs/{job.pk}/files",
            {"file": SimpleUploadedFile("t.png", png), "role": "banana"},
            format="multipart",
        ),
        400,
    )
    assert_error(
        other_client.post(
            f"/api/jobs/{job.pk}/files",
            {"file": SimpleUploadedFile("t.png", png), "role": "thumbnail"},
            format="multipart",
        ),
        404,
    )


def test_queue_status_is_staff_only(auth_client, funded_user):
    services.job_create(user=funded_user, kind_code="account_batch")
    assert_error(auth_client.get("/api/jobs/queue-status"), 403)
    staff = UserFactory(is_staff=True)
    body = client_for(staff).get("/api/jobs/queue-status").json()
    assert body["counts"]["queued"] == 1 and set(body["counts"]) >= {"pending", "cancelled", "retrying"}
    assert "average_wait_seconds" in body


def test_service_key_cannot_use_user_job_endpoints(api_client):
    from accounts.services import api_key_create

    _, key = api_key_create(name="worker", scopes=["jobs:write"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert api_client.get("/api/jobs").status_code in (401, 403)
