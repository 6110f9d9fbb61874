"""Model exports: six formats that round-trip, options recorded and applied,
downloads counted exactly, links that expire."""

import uuid
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from jobs.models import Job, JobFile, ModelExport
from tests.conftest import assert_error, client_for
from tests.factories import UserFactory
from tests.jobs.model_helpers import (
    SPHERE,
    body,
    colored_sphere,
    export_via_api,
    import_model,
    load,
    mesh_bytes,
    run_all,
)
from tests.jobs.test_concurrency import run_concurrently

pytestmark = pytest.mark.django_db

FORMATS = ["stl", "obj", "ply", "glb", "gltf", "3mf"]


def models_used_of(user) -> int:
    return User.objects.get(pk=user.pk).models_used


def download(client, export: ModelExport):
    return client.get(f"/api/exports/{export.pk}/download")


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_round_trips_with_the_same_faces_and_vertices(user, auth_client, fmt):
    # given: an icosphere (42 vertices, 80 faces) imported from an STL
    source = import_model(user)
    assert (source.result["vertex_count"], source.result["face_count"]) == (42, 80)
    # when: it is exported and the file downloaded from its export link
    export = export_via_api(auth_client, source, format=fmt)
    response = download(auth_client, export)
    # then: re-imported with trimesh it has the same faces exactly, and the same vertices once
    # coincident ones are merged (STL stores three per face, OBJ/glTF may split by normal: the
    # count that means something is the number of distinct positions), at the same places
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith(f'.{fmt}"')
    mesh = load(body(response), fmt)
    mesh.merge_vertices(merge_tex=True, merge_norm=True)
    assert len(mesh.faces) == len(SPHERE.faces) == 80
    assert len(mesh.vertices) == len(SPHERE.vertices) == 42
    assert mesh.volume == pytest.approx(SPHERE.volume, rel=1e-5)
    assert np.allclose(mesh.bounds, SPHERE.bounds, atol=1e-5)
    stored = JobFile.objects.get(job=export.job, role="output")
    assert stored.file_type == fmt and stored.file.name.startswith("models/")


@pytest.mark.parametrize(
    ("options", "factor", "recorded"),
    [
        ({"format": "stl"}, 1, ("mm", "mm", "1.000000")),
        ({"format": "stl", "source_units": "m", "units": "mm", "scale": 2}, 2000, ("mm", "m", "2.000000")),
        (
            {"format": "obj", "source_units": "in", "units": "cm", "scale": ".5"},
            1.27,
            ("cm", "in", "0.500000"),
        ),
        ({"format": "glb", "source_units": "mm"}, 0.001, ("m", "mm", "1.000000")),
        ({"format": "gltf"}, 1, ("m", "m", "1.000000")),
        ({"format": "3mf", "source_units": "cm", "scale": 3}, 30, ("mm", "cm", "3.000000")),
    ],
)
def test_units_and_scale_are_applied_and_recorded(user, auth_client, options, factor, recorded):
    source = import_model(user)
    export = export_via_api(auth_client, source, **options)
    mesh = load(body(download(auth_client, export)), options["format"])
    assert np.allclose(mesh.extents, SPHERE.extents * factor, rtol=1e-5)
    export.refresh_from_db()
    assert (export.units, export.source_units, f"{export.scale:.6f}") == recorded
    shown = auth_client.get(f"/api/exports/{export.pk}").json()
    assert (shown["units"], shown["source_units"], shown["scale"]) == recorded
    assert export.job.params["units"] == recorded[0] and export.job.params["scale"] == recorded[2]
    assert export.job.result["units"] == recorded[0]


def test_include_normals_is_recorded_and_decides_whether_normals_are_written(user, auth_client):
    source = import_model(user)
    with_normals = export_via_api(auth_client, source, format="obj", include_normals=True)
    without = export_via_api(auth_client, source, format="obj", include_normals=False)
    assert b"\nvn " in body(download(auth_client, with_normals))
    assert b"\nvn " not in body(download(auth_client, without))
    ply = export_via_api(auth_client, source, format="ply", include_normals=False)
    assert b"property float nx" not in body(download(auth_client, ply)).split(b"end_header")[0]
    assert (with_normals.include_normals, without.include_normals) == (True, False)
    assert auth_client.get(f"/api/exports/{without.pk}").json()["include_normals"] is False


def vertex_colors(mesh) -> np.ndarray:
    visual = mesh.visual.to_color() if hasattr(mesh.visual, "to_color") else mesh.visual
    return visual.vertex_colors[:, :3]


@pytest.mark.parametrize("fmt", ["ply", "glb", "obj"])
def test_include_colors_off_drops_the_models_colours(user, auth_client, fmt):
    # given: a model whose vertices are coloured
    source = import_model(user, mesh_bytes(colored_sphere(), "ply"), name="red.ply")
    kept = export_via_api(auth_client, source, format=fmt)
    dropped = export_via_api(auth_client, source, format=fmt, include_colors=False, include_textures=False)
    red = np.array([200, 30, 40])
    kept_mesh = load(body(download(auth_client, kept)), fmt)
    dropped_mesh = load(body(download(auth_client, dropped)), fmt)
    assert (vertex_colors(kept_mesh) == red).all()
    assert not (vertex_colors(dropped_mesh) == red).all(axis=1).any()
    dropped.refresh_from_db()
    assert (dropped.include_colors, dropped.include_textures, dropped.include_normals) == (False, False, True)


@pytest.mark.parametrize(
    "params",
    [
        {"format": "fbx"},
        {"format": "stl", "units": "lightyear"},
        {"format": "stl", "source_units": ["mm"]},
        {"format": "stl", "units": 5},
        {"format": "stl", "scale": 0},
        {"format": "stl", "scale": -1},
        {"format": "stl", "scale": "0.0000001"},
        {"format": "stl", "scale": 1e9},
        {"format": "stl", "scale": "abc"},
        {"format": "stl", "scale": "NaN"},
        {"format": "stl", "scale": "Infinity"},
        {"format": "stl", "scale": True},
        {"format": "stl", "scale": [1]},
        {"format": "stl", "include_normals": "yes"},
        {"format": "stl", "include_colors": 1},
        {"format": "stl", "include_textures": None},
        {"format": "glb", "units": "mm"},
        {"format": "3mf", "units": "in"},
        {"format": "stl", "source_job_id": "not-a-uuid"},
        {"format": "stl", "source_job_id": 12},
    ],
)
def test_bad_export_options_are_a_400_and_create_nothing(user, auth_client, params):
    source = import_model(user)
    params = {"source_job_id": str(source.pk), **params}
    response = auth_client.post("/api/jobs", {"kind": "model_export", "params": params}, format="json")
    assert_error(response, 400, "validation_error")
    assert not Job.objects.filter(kind__code="model_export").exists()
    assert not ModelExport.objects.exists()


def test_exporting_another_users_unknown_or_deleted_model_is_a_404(user, auth_client, other_user):
    theirs = import_model(other_user)
    mine = import_model(user)
    auth_client.delete(f"/api/models/{mine.pk}")
    for source_id in (theirs.pk, mine.pk, uuid.uuid4()):
        response = auth_client.post(
            "/api/jobs",
            {"kind": "model_export", "params": {"format": "stl", "source_job_id": str(source_id)}},
            format="json",
        )
        assert_error(response, 404, "not_found")
    assert not ModelExport.objects.exists()


def test_a_model_still_importing_cannot_be_exported_yet(user, auth_client):
    source = import_model(user, run=False)
    response = auth_client.post(
        "/api/jobs",
        {"kind": "model_export", "params": {"format": "stl", "source_job_id": str(source.pk)}},
        format="json",
    )
    assert_error(response, 409, "model_not_ready")


def test_downloads_are_counted_on_both_paths(user, auth_client):
    export = export_via_api(auth_client, import_model(user), format="stl")
    assert export.download_count == 0
    link = auth_client.get(f"/api/exports/{export.pk}").json()["download_url"]
    assert link == f"/api/exports/{export.pk}/download"
    assert auth_client.get(link).status_code == 200
    assert download(auth_client, export).status_code == 200
    out = JobFile.objects.get(job=export.job, role="output")
    assert auth_client.get(f"/api/jobs/{export.job_id}/files/{out.pk}/download").status_code == 200
    export.refresh_from_db()
    assert export.download_count == 3 and export.last_downloaded_at is not None
    assert auth_client.get(f"/api/exports/{export.pk}").json()["download_count"] == 3


def test_the_link_expires_after_the_configured_time_on_both_paths(user, auth_client, settings):
    settings.JOBS_EXPORT_LINK_SECONDS = 3600
    export = export_via_api(auth_client, import_model(user), format="obj")
    completed = export.job.completed_at
    out = JobFile.objects.get(job=export.job, role="output")
    shown = auth_client.get(f"/api/exports/{export.pk}").json()
    assert shown["status"] == "ready"
    assert shown["expires_at"].replace("Z", "+00:00") == (completed + timedelta(hours=1)).isoformat()
    with time_machine.travel(completed + timedelta(minutes=59), tick=False):
        assert download(client_for(user), export).status_code == 200
    with time_machine.travel(completed + timedelta(hours=1), tick=False):
        client = client_for(user)  # a token issued then: the one from the start has expired too
        assert_error(download(client, export), 410, "expired")
        assert_error(client.get(f"/api/jobs/{export.job_id}/files/{out.pk}/download"), 410, "expired")
        assert client.get(f"/api/exports/{export.pk}").json()["status"] == "expired"
    export.refresh_from_db()
    assert export.download_count == 1


def test_an_export_not_finished_has_no_link_and_its_download_is_a_409(user, auth_client):
    export = export_via_api(auth_client, import_model(user), format="stl", run=False)
    shown = auth_client.get(f"/api/exports/{export.pk}").json()
    assert (shown["status"], shown["download_url"], shown["expires_at"]) == ("queued", None, None)
    assert_error(download(auth_client, export), 409, "export_not_ready")
    export.refresh_from_db()
    assert export.download_count == 0


def test_exports_are_the_owners_only(user, auth_client, other_client):
    export = export_via_api(auth_client, import_model(user), format="stl")
    for path in (f"/api/exports/{export.pk}", f"/api/exports/{export.pk}/download"):
        assert_error(other_client.get(path), 404, "not_found")
        assert_error(auth_client.get(path.replace(str(export.pk), str(uuid.uuid4()))), 404)
    assert other_client.get("/api/exports").json()["count"] == 0
    export.refresh_from_db()
    assert export.download_count == 0


def test_exports_need_authentication(api_client, user):
    for path in ("/api/exports", f"/api/exports/{uuid.uuid4()}", f"/api/exports/{uuid.uuid4()}/download"):
        assert_error(api_client.get(path), 401)


def test_the_export_list_is_paginated_with_a_constant_number_of_queries(user, auth_client):
    source = import_model(user)
    for fmt in ("stl", "obj"):
        export_via_api(auth_client, source, format=fmt)
    with CaptureQueriesContext(connection) as two:
        small = auth_client.get("/api/exports?page_size=1")
    for fmt in ("ply", "glb", "gltf", "3mf"):
        export_via_api(auth_client, source, format=fmt)
    with CaptureQueriesContext(connection) as six:
        page = auth_client.get("/api/exports")
    assert len(six.captured_queries) == len(two.captured_queries)
    assert small.json()["count"] == 2 and small.json()["next"]
    listed = page.json()
    assert listed["count"] == 6 and [e["format"] for e in listed["results"]][0] == "3mf"
    assert all(e["status"] == "ready" and e["download_url"] for e in listed["results"])


@pytest.mark.django_db(transaction=True)
def test_concurrent_downloads_are_each_counted_exactly_once():
    # given: a ready export
    user = UserFactory()
    export = export_via_api(client_for(user), import_model(user), format="stl")
    clients = [client_for(user) for _ in range(8)]

    # when: eight clients download it at the same moment
    def fetch(i):
        response = download(clients[i], export)
        body(response)
        return response.status_code

    codes = run_concurrently(8, fetch)
    # then: every download was served and counted, none lost to a race
    assert codes == [200] * 8
    export.refresh_from_db()
    assert export.download_count == 8
    assert User.objects.get(pk=user.pk).models_used == 1


def test_scale_is_stored_as_a_decimal(user, auth_client):
    export = export_via_api(auth_client, import_model(user), format="stl", scale="1.25")
    export.refresh_from_db()
    assert export.scale == Decimal("1.25")
    assert timezone.is_aware(export.created_at)


def test_staff_see_exports_and_projects_in_the_admin(user, auth_client, admin_client):
    export_via_api(auth_client, import_model(user), format="stl")
    auth_client.post("/api/projects", {"name": "Parts"}, format="json")
    for path in ("/admin/jobs/modelexport/", "/admin/jobs/project/"):
        assert admin_client.get(path).status_code == 200
    assert (
        admin_client.get(f"/admin/jobs/modelexport/{ModelExport.objects.get().pk}/change/").status_code == 200
    )


def test_the_database_refuses_an_export_of_another_users_model(user, auth_client, other_user):
    export = export_via_api(auth_client, import_model(user), format="stl")
    theirs = import_model(other_user)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelExport.objects.filter(pk=export.pk).update(source_job=theirs)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelExport.objects.filter(pk=export.pk).update(user=other_user)


def test_an_export_of_an_uploaded_file_records_no_source_model_and_downloads(user, auth_client):
    upload = SimpleUploadedFile("part.ply", mesh_bytes(SPHERE, "ply"))
    response = auth_client.post(
        "/api/jobs",
        {"kind": "model_export", "params": '{"format": "3mf", "source_units": "in"}', "input": upload},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert run_all() == ["completed"]
    export = ModelExport.objects.get(job_id=response.json()["id"])
    recorded = (export.source_job_id, export.format, export.units, export.source_units)
    assert recorded == (None, "3mf", "mm", "in")
    mesh = load(body(download(auth_client, export)), "3mf")
    assert len(mesh.faces) == 80 and np.allclose(mesh.extents, SPHERE.extents * 25.4, rtol=1e-5)
    assert models_used_of(user) == 0  # an export takes no model slot
