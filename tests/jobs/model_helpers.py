"""Helpers of the model lifecycle tests: meshes made here, imported and exported through the API
and run by the engine in process."""

import numpy as np
import trimesh
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs import engine, services
from jobs.models import Job, ModelExport

# An icosphere: 42 vertices, 80 faces, closed, every vertex shared by 5 or 6 faces, so formats
# that split vertices per face (STL) or per normal show it, and merging gives them back.
SPHERE = trimesh.creation.icosphere(subdivisions=1, radius=10.0)


def mesh_bytes(mesh: trimesh.Trimesh, file_type: str) -> bytes:
    exported = mesh.export(file_type=file_type)
    return exported.encode() if isinstance(exported, str) else exported


def run_all() -> list[str]:
    outcomes = []
    while claimed := engine.jobs_claim(limit=4):
        for job_id, attempt in claimed:
            outcomes.append(engine.job_run(job_id=job_id, attempt=attempt))
    return outcomes


def import_model(user, data: bytes | None = None, name: str = "sphere.stl", run: bool = True) -> Job:
    job = services.job_create(
        user=user,
        kind_code="model_import",
        input_file=SimpleUploadedFile(name, data if data is not None else mesh_bytes(SPHERE, "stl")),
    )
    if run:
        assert run_all() == ["completed"]
        job.refresh_from_db()
    return job


def export_via_api(client, source: Job, run: bool = True, **options):
    response = client.post(
        "/api/jobs",
        {"kind": "model_export", "params": {"source_job_id": str(source.pk), **options}},
        format="json",
    )
    assert response.status_code == 201, response.content
    if run:
        assert run_all() == ["completed"]
    return ModelExport.objects.get(job_id=response.json()["id"])


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def load(data: bytes, file_type: str) -> trimesh.Trimesh:
    return trimesh.load(trimesh.util.wrap_as_stream(data), file_type=file_type, force="mesh", process=True)


def colored_sphere() -> trimesh.Trimesh:
    mesh = SPHERE.copy()
    mesh.visual.vertex_colors = np.tile(np.array([200, 30, 40, 255], dtype=np.uint8), (len(mesh.vertices), 1))
    return mesh
