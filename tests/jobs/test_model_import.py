"""POST /api/models/import (one code path with POST /api/jobs kind model_import), the thumbnail
every import renders on the worker, and what /api/models shows of the measurement."""

import pytest
import trimesh
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job, JobFile
from tests.conftest import assert_error, client_for
from tests.jobs.model_helpers import SPHERE, body, mesh_bytes, run_all

pytestmark = pytest.mark.django_db

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _upload(name="sphere.stl", data=None):
    return SimpleUploadedFile(name, data if data is not None else mesh_bytes(SPHERE, "stl"))


def test_models_import_answers_as_post_jobs_with_kind_model_import(auth_client, user):
    # when the same file is sent to both paths
    via_models = auth_client.post("/api/models/import", {"input": _upload()}, format="multipart")
    via_jobs = auth_client.post("/api/jobs", {"kind": "model_import", "input": _upload()}, format="multipart")
    # then both made a model_import job and answered alike
    assert via_models.status_code == via_jobs.status_code == 201, via_models.content
    first, second = via_models.json(), via_jobs.json()
    assert set(first) == set(second)
    assert first["kind"] == second["kind"] == "model_import"
    assert first["status"] == second["status"] and first["requested_count"] == 1
    assert Job.objects.filter(user=user, kind__code="model_import").count() == 2
    user.refresh_from_db()
    assert user.models_used == 2


def test_models_import_refuses_a_missing_or_bad_file_and_anonymous_callers(auth_client, api_client, user):
    assert_error(auth_client.post("/api/models/import", {}, format="multipart"), 400, "validation_error")
    bad = auth_client.post(
        "/api/models/import", {"input": _upload("notes.txt", b"hello")}, format="multipart"
    )
    assert_error(bad, 400)
    assert_error(api_client.post("/api/models/import", {"input": _upload()}, format="multipart"), 401)
    assert not Job.objects.exists()


def test_an_import_renders_a_png_thumbnail_downloadable_through_thumbnail_url(auth_client, user):
    # given an imported model, run by the engine
    created = auth_client.post("/api/models/import", {"input": _upload()}, format="multipart").json()
    assert run_all() == ["completed"]
    # when its owner reads it
    model = auth_client.get(f"/api/models/{created['id']}").json()
    # then it carries a thumbnail stored under thumbnails/, and its URL answers the PNG
    thumbnail = JobFile.objects.get(job_id=created["id"], role="thumbnail")
    assert thumbnail.prefix == "thumbnails/" and thumbnail.file.name.startswith("thumbnails/")
    assert model["thumbnail_url"]
    response = auth_client.get(model["thumbnail_url"])
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert body(response).startswith(PNG_MAGIC)
    # and the list shows the same
    listed = auth_client.get("/api/models").json()["results"]
    assert [m["thumbnail_url"] for m in listed] == [model["thumbnail_url"]]


def test_another_user_cannot_read_a_models_thumbnail(auth_client, other_user):
    created = auth_client.post("/api/models/import", {"input": _upload()}, format="multipart").json()
    run_all()
    url = auth_client.get(f"/api/models/{created['id']}").json()["thumbnail_url"]
    assert_error(client_for(other_user).get(url), 404)


def test_models_show_dimensions_bounding_box_volume_and_validity(auth_client):
    box = trimesh.creation.box(extents=(2.0, 4.0, 6.0))
    created = auth_client.post(
        "/api/models/import", {"input": _upload("box.stl", mesh_bytes(box, "stl"))}, format="multipart"
    ).json()
    run_all()
    model = auth_client.get(f"/api/models/{created['id']}").json()
    assert model["dimensions"] == pytest.approx([2.0, 4.0, 6.0])
    assert model["bounding_box"] == {"min": [-1.0, -2.0, -3.0], "max": [1.0, 2.0, 3.0]}
    assert model["volume"] == pytest.approx(48.0)
    assert model["is_valid"] is True and model["validation_errors"] == []


def test_an_open_mesh_shows_why_it_is_not_valid(auth_client):
    # a box with one face removed: not watertight
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    open_box = trimesh.Trimesh(vertices=box.vertices, faces=box.faces[:-1], process=False)
    created = auth_client.post(
        "/api/models/import", {"input": _upload("open.ply", mesh_bytes(open_box, "ply"))}, format="multipart"
    ).json()
    assert run_all() == ["completed"]
    model = auth_client.get(f"/api/models/{created['id']}").json()
    assert model["is_valid"] is False and model["volume"] is None
    assert any("watertight" in error for error in model["validation_errors"])
    assert model["thumbnail_url"]
