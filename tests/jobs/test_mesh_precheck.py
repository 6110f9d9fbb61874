"""Issue 19 §6: the declared-size check before any parse cannot be crashed (a GLB accessor
count of Infinity) or fooled (one OBJ fan polygon of millions of indices)."""

import struct

import pytest
import trimesh
from django.core.files.base import ContentFile

from config.exceptions import ApplicationError
from jobs import services
from jobs.files import declared_mesh_counts
from jobs.models import Job
from tests.conftest import assert_error
from tests.jobs.test_files_api import run_all
from tests.jobs.test_quotas import import_job, upload

pytestmark = pytest.mark.django_db


def glb_with_count(count_text: str) -> bytes:
    document = (
        '{"asset": {"version": "2.0"}, "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],'
        ' "accessors": [{"componentType": 5126, "type": "VEC3", "count": ' + count_text + "}]}"
    ).encode()
    document += b" " * (-len(document) % 4)
    return (
        b"glTF"
        + struct.pack("<II", 2, 20 + len(document))
        + struct.pack("<I4s", len(document), b"JSON")
        + document
    )


COUNTS = ["Infinity", "-Infinity", "NaN", "1e400", "1.5", '"12"', "true", "-3", "null"]


@pytest.mark.parametrize("count", COUNTS)
def test_a_glb_accessor_count_that_is_not_a_count_is_a_400_at_upload(auth_client, user, count):
    response = auth_client.post(
        "/api/jobs",
        {"kind": "model_import", "input": upload("x.glb", glb_with_count(count))},
        format="multipart",
    )

    error = assert_error(response, 400, "validation_error")
    messages = [message for field in error["fields"].values() for message in field]
    assert any("glTF" in message for message in messages), messages
    user.refresh_from_db()
    assert not Job.objects.exists() and user.models_used == 0


@pytest.mark.parametrize("count", ["Infinity", "1e400"])
def test_a_stored_glb_with_an_infinite_count_fails_the_import_with_a_clear_error(user, count, monkeypatch):
    # given: a file stored before the check existed (its bytes replaced behind the upload check)
    job = import_job(user, "glb")
    stored = job.files.get(role="input")
    with open(stored.file.path, "wb") as handle:
        handle.write(glb_with_count(count))
    monkeypatch.setattr(trimesh, "load", lambda *a, **k: pytest.fail("trimesh.load was called"))

    # when
    outcome = run_all()

    # then: one attempt, a permanent failure that says why
    job.refresh_from_db()
    assert outcome == ["failed"] and job.attempts == 1
    assert "glTF" in job.error


def fan_obj(indices: int) -> bytes:
    """Three vertices and one polygon `f 1 2 3 1 2 3 …` of `indices` vertex references."""
    pattern = b" 1 2 3" * (indices // 3) + b" 1 2 3"[: 2 * (indices % 3)]
    return b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf" + pattern + b"\n"


@pytest.mark.parametrize("chunk", [1, 5, 64, 1 << 20])  # lines cut by chunks, and whole lines
def test_an_obj_face_counts_the_triangles_its_indices_make(monkeypatch, chunk):
    monkeypatch.setattr("jobs.files.SCAN_CHUNK", chunk)
    data = (
        b"# c\nv 0 0 0\n  v 1 0 0\r\nv\t0 1 0\nv 1 1 0\nf 1 2 3\nf\t1 2 3 4\r\nvn 0 0 1\n"
        b"f 1/1/1 2/2/2 3/3/3 4/4/4 1/1/1\nf\nf 1\r\n  f 1 2\nfoo 1 2 3 4\nf 1 2 3"
    )
    assert declared_mesh_counts(ContentFile(data), "obj", len(data)) == (4, 1 + 2 + 3 + 1)


def test_a_single_fan_polygon_of_millions_of_indices_is_refused_before_trimesh_sees_it(
    user, monkeypatch, settings
):
    # given: one `f` line of 3 M indices (one line: the old line count saw one face)
    data = fan_obj(3_000_000)
    monkeypatch.setattr(trimesh, "load", lambda *a, **k: pytest.fail("trimesh.load was called"))

    # when / then
    with pytest.raises(ApplicationError) as refused:
        services.job_create(user=user, kind_code="model_import", input_file=upload("fan.obj", data))
    assert refused.value.code == "mesh_too_large"
    assert str(3_000_000 - 2) in refused.value.message
    user.refresh_from_db()
    assert user.models_used == 0 and not Job.objects.exists()


def test_a_fan_polygon_under_the_limit_is_counted_as_its_triangles(settings):
    settings.JOBS_MAX_MESH_FACES = 10
    data = fan_obj(12)
    assert declared_mesh_counts(ContentFile(data), "obj", len(data)) == (3, 10)


def ply(fmt: str, body: bytes, *, faces: int = 1, face_list: str = "uchar int", extra: str = "") -> bytes:
    """Four vertices (x, y, z floats), then `faces` faces of `property list <face_list>`."""
    header = (
        f"ply\nformat {fmt} 1.0\ncomment made by a test\nelement vertex 4\nproperty float x\n"
        f"property float y\nproperty float z\n{extra}element face {faces}\n"
        f"property list {face_list} vertex_indices\nend_header\n"
    )
    return header.encode() + body


ASCII_VERTICES = b"0 0 0\n1 0 0\n0 1 0\n1 1 0\n"
BINARY_VERTICES = struct.pack("<12f", 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 1, 0)


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])  # records cut by chunks, and whole ones
def test_a_ply_face_counts_the_triangles_its_indices_make(monkeypatch, chunk):
    monkeypatch.setattr("jobs.files.SCAN_CHUNK", chunk)
    ascii_data = ply("ascii", ASCII_VERTICES + b"3 0 1 2\n4 0 1 2 3\n6 0 1 2 3 0 1\n", faces=3)
    binary_faces = struct.pack("<B3i", 3, 0, 1, 2) + struct.pack("<B5i", 5, 0, 1, 2, 3, 0)
    binary_data = ply("binary_little_endian", BINARY_VERTICES + binary_faces, faces=2)
    big_faces = struct.pack(">I4I", 4, 0, 1, 2, 3)
    big_data = ply("binary_big_endian", struct.pack(">12f", *range(12)) + big_faces, face_list="uint uint")

    assert declared_mesh_counts(ContentFile(ascii_data), "ply", len(ascii_data)) == (4, 1 + 2 + 4)
    assert declared_mesh_counts(ContentFile(binary_data), "ply", len(binary_data)) == (4, 1 + 3)
    assert declared_mesh_counts(ContentFile(big_data), "ply", len(big_data)) == (4, 2)


def test_a_ply_element_with_a_list_before_the_faces_is_walked_record_by_record():
    extra = "element edge 2\nproperty list uchar int vertex_pair\n"
    edges = struct.pack("<B2i", 2, 0, 1) + struct.pack("<B2i", 2, 1, 2)
    # the header lists the edges before the faces; their records come first in the body too
    header_first = ply("binary_little_endian", b"", extra=extra).split(b"element face")[0]
    data = (
        header_first
        + b"element face 1\nproperty list uchar int vertex_indices\nend_header\n"
        + BINARY_VERTICES
        + edges
        + struct.pack("<B4i", 4, 0, 1, 2, 3)
    )
    assert declared_mesh_counts(ContentFile(data), "ply", len(data)) == (4, 2)


def test_a_single_ply_fan_polygon_of_millions_of_indices_is_refused_before_trimesh_sees_it(user, monkeypatch):
    # given: a binary PLY whose header declares one face, a polygon of 3 M indices
    indices = 3_000_000
    face = struct.pack("<i", indices) + struct.pack("<3i", 0, 1, 2) * (indices // 3)
    data = ply("binary_little_endian", BINARY_VERTICES + face, face_list="int int")
    monkeypatch.setattr(trimesh, "load", lambda *a, **k: pytest.fail("trimesh.load was called"))

    # when / then
    with pytest.raises(ApplicationError) as refused:
        services.job_create(user=user, kind_code="model_import", input_file=upload("fan.ply", data))
    assert refused.value.code == "mesh_too_large"
    user.refresh_from_db()
    assert user.models_used == 0 and not Job.objects.exists()


@pytest.mark.parametrize(
    "body, message",
    [
        (ASCII_VERTICES + b"x 0 1 2\n", "not an integer"),
        (ASCII_VERTICES + b"-3 0 1 2\n", "negative"),
    ],
)
def test_a_ply_face_count_that_is_not_a_count_is_a_400(body, message):
    data = ply("ascii", body)
    with pytest.raises(ApplicationError) as refused:
        declared_mesh_counts(ContentFile(data), "ply", len(data))
    assert refused.value.status_code == 400 and message in refused.value.fields["file"][0]


def test_a_ply_body_that_ends_early_keeps_the_declared_face_count():
    data = ply("ascii", ASCII_VERTICES + b"3 0 1 2\n", faces=5)
    assert declared_mesh_counts(ContentFile(data), "ply", len(data)) == (4, 5)
