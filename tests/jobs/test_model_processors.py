"""model_import / model_export run by the engine (claim + run in-process) on meshes made here."""

import hashlib

import pytest
import trimesh
from django.core.files.uploadedfile import SimpleUploadedFile

from config.exceptions import NotFound
from jobs import services
from jobs.models import Artifact, Job, JobDailyStat, JobFile
from tests.jobs.model_helpers import mesh_bytes, run_all

pytestmark = pytest.mark.django_db


def cube_bytes(file_type: str) -> bytes:
    return mesh_bytes(trimesh.creation.box(extents=(1.0, 1.0, 1.0)), file_type)


def import_job(user, name: str, data: bytes) -> Job:
    return services.job_create(user=user, kind_code="model_import", input_file=SimpleUploadedFile(name, data))


@pytest.mark.parametrize("file_type", ["stl", "obj", "ply", "glb"])
def test_model_import_measures_a_unit_cube(user, file_type):
    job = import_job(user, f"cube.{file_type}", cube_bytes(file_type))
    assert run_all() == ["completed"]
    job.refresh_from_db()
    assert job.status == "completed" and job.attempts == 1 and job.successful_count == 1
    result = job.result
    assert (result["vertex_count"], result["face_count"]) == (8, 12)
    assert result["volume"] == pytest.approx(1.0) and result["is_valid"] is True
    assert result["dimensions"] == pytest.approx([1.0, 1.0, 1.0])
    assert result["validation_errors"] == []
    assert Artifact.objects.filter(job=job, type="model").count() == 1
    assert JobDailyStat.objects.get(user=user).vault_items == 1


def test_corrupt_model_fails_cleanly_at_once_and_frees_the_model_slot(user):
    job = import_job(user, "broken.stl", b"solid nonsense\nthis is not a mesh at all\n")
    user.refresh_from_db()
    assert user.models_used == 1
    assert run_all() == ["failed"]
    job.refresh_from_db()
    assert job.status == "failed" and job.attempts == 1
    assert job.error.startswith("The model file could not be read")
    user.refresh_from_db()
    assert user.models_used == 0


def test_model_export_converts_the_imported_model_and_stores_the_output(user, auth_client):
    source = import_job(user, "cube.obj", cube_bytes("obj"))
    run_all()
    response = auth_client.post(
        "/api/jobs",
        {"kind": "model_export", "params": {"format": "glb", "source_job_id": str(source.pk)}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert run_all() == ["completed"]
    job = Job.objects.get(pk=response.json()["id"])
    out = JobFile.objects.get(job=job, role="output")
    assert out.file.name.startswith("models/") and out.file_type == "glb"
    data = out.file.read()
    assert hashlib.sha256(data).hexdigest() == out.sha256 and out.size == len(data)
    mesh = trimesh.load(trimesh.util.wrap_as_stream(data), file_type="glb", force="mesh")
    assert len(mesh.vertices) == 8 and mesh.volume == pytest.approx(1.0)
    assert job.result["format"] == "glb"


def test_model_export_without_a_source_fails_without_retrying(user):
    job = services.job_create(user=user, kind_code="model_export", params={"format": "stl"})
    assert run_all() == ["failed"]
    job.refresh_from_db()
    assert job.attempts == 1 and "No source model" in job.error


def test_another_users_model_cannot_be_exported(user, other_user):
    theirs = import_job(other_user, "cube.stl", cube_bytes("stl"))
    run_all()
    # the export is refused when it is asked for (404, as for a model that does not exist):
    # no job, no file
    with pytest.raises(NotFound):
        services.job_create(
            user=user, kind_code="model_export", params={"format": "obj", "source_job_id": str(theirs.pk)}
        )
    assert not Job.objects.filter(user=user).exists()
    assert run_all() == []
