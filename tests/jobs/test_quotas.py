"""Quotas: declared mesh size before any parse, per-user storage, files per job,
files deleted on cancel and nightly for long-dead jobs."""

import threading
from datetime import timedelta

import pytest
import trimesh
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from config.exceptions import ApplicationError
from config.models import ScheduledRun
from config.schedules import SCHEDULES
from jobs import file_services, services, tasks
from jobs.files import check_upload, declared_mesh_counts
from jobs.models import Artifact, Job, JobFile
from tests.conftest import assert_error
from tests.factories import UserFactory
from tests.jobs.factories import JobFactory, fail_job
from tests.jobs.test_files_api import cube_bytes, run_all

pytestmark = pytest.mark.django_db

ASCII_STL_CUBE = (
    "solid cube\n"
    + "".join(
        "  facet normal 0 0 1\n    outer loop\n      vertex 0 0 0\n      vertex 1 0 0\n      vertex 0 1 0\n"
        "    endloop\n  endfacet\n"
        for _ in range(12)
    )
    + "endsolid cube\n"
)


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def import_job(user, file_type: str = "stl") -> Job:
    return services.job_create(
        user=user, kind_code="model_import", input_file=upload(f"c.{file_type}", cube_bytes(file_type))
    )


def post_import(client, file_type: str = "stl"):
    return client.post(
        "/api/jobs",
        {"kind": "model_import", "input": upload(f"c.{file_type}", cube_bytes(file_type))},
        format="multipart",
    )


# --- declared mesh size ---------------------------------------------------------------------


@pytest.mark.parametrize("file_type", ["stl", "obj", "ply", "glb"])
def test_declared_counts_are_read_without_parsing(file_type):
    data = cube_bytes(file_type)
    vertices, faces = declared_mesh_counts(ContentFile(data), file_type, len(data))
    # STL stores 3 corners per triangle; the others share the 8 corners of the cube
    assert faces == 12 and vertices == (36 if file_type == "stl" else 8)


def test_ascii_stl_and_obj_are_counted_by_a_streaming_scan_across_chunk_boundaries(monkeypatch):
    monkeypatch.setattr("jobs.files.SCAN_CHUNK", 7)  # every line straddles a chunk boundary
    assert declared_mesh_counts(ContentFile(ASCII_STL_CUBE.encode()), "stl", len(ASCII_STL_CUBE))[1] == 12
    obj = cube_bytes("obj")
    assert declared_mesh_counts(ContentFile(obj), "obj", len(obj)) == (8, 12)


@pytest.mark.parametrize("file_type", ["stl", "obj", "ply", "glb"])
def test_model_over_the_face_limit_is_refused_at_upload_and_nothing_persists(
    auth_client, user, settings, file_type
):
    settings.JOBS_MAX_MESH_FACES = 11  # a cube has 12 faces
    response = auth_client.post(
        "/api/jobs",
        {"kind": "model_import", "input": upload(f"cube.{file_type}", cube_bytes(file_type))},
        format="multipart",
    )
    assert_error(response, 400, "mesh_too_large")
    user.refresh_from_db()
    assert not Job.objects.exists() and not JobFile.objects.exists() and user.models_used == 0


def test_model_at_the_face_limit_is_accepted(auth_client, user, settings):
    settings.JOBS_MAX_MESH_FACES = 36  # the binary STL cube declares 36 corners, 12 faces
    response = post_import(auth_client)
    assert response.status_code == 201, response.content


def test_a_47_mb_obj_of_5_9_million_faces_is_refused_before_trimesh_sees_it(user, monkeypatch):
    # given: the file from the finding, and a trimesh that must not be called
    data = b"v 0 0 0\nv 1 0 0\nv 0 1 0\n" + b"f 1 2 3\n" * 5_900_000
    assert len(data) > 47_000_000
    monkeypatch.setattr(trimesh, "load", lambda *a, **k: pytest.fail("trimesh.load was called"))
    # when / then: refused with the default limit, and no job, slot or file exists
    with pytest.raises(ApplicationError) as refused:
        services.job_create(user=user, kind_code="model_import", input_file=upload("big.obj", data))
    assert refused.value.code == "mesh_too_large" and refused.value.status_code == 400
    user.refresh_from_db()
    assert user.models_used == 0 and not Job.objects.exists()


def test_a_stored_model_over_a_lowered_limit_fails_the_job_without_parsing(user, settings, monkeypatch):
    job = import_job(user, "obj")
    settings.JOBS_MAX_MESH_FACES = 5
    monkeypatch.setattr(trimesh, "load", lambda *a, **k: pytest.fail("trimesh.load was called"))
    assert run_all() == ["failed"]
    job.refresh_from_db()
    assert job.attempts == 1 and "at most 5" in job.error


def test_glb_with_a_broken_json_chunk_is_400(auth_client, user):
    data = (
        b"glTF"
        + (2).to_bytes(4, "little")
        + (40).to_bytes(4, "little")
        + (8).to_bytes(4, "little")
        + b"JSON"
        + b'{"meshe'
    )
    response = auth_client.post(
        "/api/jobs", {"kind": "model_import", "input": upload("x.glb", data)}, format="multipart"
    )
    assert_error(response, 400, "validation_error")


# --- storage quota --------------------------------------------------------------------------


def test_upload_past_the_storage_quota_is_413_and_stores_nothing(auth_client, user, settings):
    data = cube_bytes("stl")
    settings.STORAGE_QUOTA_BYTES = 2 * len(data)
    for _ in range(2):
        assert (
            auth_client.post(
                "/api/jobs", {"kind": "model_import", "input": upload("c.stl", data)}, format="multipart"
            ).status_code
            == 201
        )
    response = auth_client.post(
        "/api/jobs", {"kind": "model_import", "input": upload("c.stl", data)}, format="multipart"
    )
    assert_error(response, 413, "storage_quota_exceeded")
    user.refresh_from_db()
    assert Job.objects.count() == 2 and user.models_used == 2
    assert file_services.storage_used(user_id=user.pk) == 2 * len(data)
    # a cancelled job's files are deleted, which frees the space
    job = Job.objects.filter(user=user).first()
    assert auth_client.post(f"/api/jobs/{job.pk}/cancel").status_code == 200
    assert (
        auth_client.post(
            "/api/jobs", {"kind": "model_import", "input": upload("c.stl", data)}, format="multipart"
        ).status_code
        == 201
    )


def test_quota_applies_to_files_added_to_a_job_and_is_per_user(auth_client, user, other_user, settings):
    settings.STORAGE_QUOTA_BYTES = 100
    job = JobFactory(user=user)
    JobFile.objects.create(
        job=JobFactory(user=other_user),
        role="output",
        prefix="models/",
        file="models/o.stl",
        file_type="stl",
        size=10_000,
        sha256="0" * 64,
        content_type="model/stl",
    )
    ok = auth_client.post(
        f"/api/jobs/{job.pk}/files",
        {"file": upload("a.obj", b"v 0 0 0\n" * 10), "role": "input"},
        format="multipart",
    )
    assert ok.status_code == 201, ok.content
    refused = auth_client.post(
        f"/api/jobs/{job.pk}/files",
        {"file": upload("b.obj", b"v 0 0 0\n" * 4), "role": "input"},
        format="multipart",
    )
    assert_error(refused, 413, "storage_quota_exceeded")
    assert JobFile.objects.filter(job=job).count() == 1


def test_a_retry_sharing_its_originals_input_is_counted_once(user):
    job = import_job(user)
    size = JobFile.objects.get(job=job).size
    fail_job(job)
    services.job_retry(job=Job.objects.get(pk=job.pk))
    assert JobFile.objects.filter(job__user=user).count() == 2
    assert file_services.storage_used(user_id=user.pk) == size


def _add_files_concurrently(job_ids: list, data: bytes) -> list[str]:
    outcomes, barrier = [], threading.Barrier(len(job_ids))

    def add(job_id):
        try:
            barrier.wait()
            services.job_file_add(
                job=Job.objects.get(pk=job_id), uploaded=upload("m.obj", data), role="input"
            )
            outcomes.append("stored")
        except ApplicationError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=add, args=(job_id,)) for job_id in job_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_never_pass_the_storage_quota(settings):
    # given: room for exactly 3 files, 8 uploads at once to 8 different jobs of one user
    data = b"v 0 0 0\n" * 8
    settings.STORAGE_QUOTA_BYTES = 3 * len(data)
    user = UserFactory()
    jobs = [JobFactory(user=user).pk for _ in range(8)]
    # when
    outcomes = _add_files_concurrently(jobs, data)
    # then
    assert sorted(outcomes) == ["storage_quota_exceeded"] * 5 + ["stored"] * 3
    assert file_services.storage_used(user_id=user.pk) == 3 * len(data)


# --- files per job --------------------------------------------------------------------------


def test_a_job_holds_at_most_the_configured_number_of_files(auth_client, user, settings):
    settings.JOBS_MAX_FILES_PER_JOB = 3
    job = JobFactory(user=user)
    codes = []
    for i in range(20):
        response = auth_client.post(
            f"/api/jobs/{job.pk}/files",
            {"file": upload(f"{i}.obj", b"v 0 0 0\n"), "role": "input"},
            format="multipart",
        )
        codes.append(201 if response.status_code == 201 else response.json()["error"]["code"])
    assert codes == [201] * 3 + ["too_many_files"] * 17
    assert JobFile.objects.filter(job=job).count() == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_to_one_job_never_pass_the_files_limit(settings):
    settings.JOBS_MAX_FILES_PER_JOB = 2
    job = JobFactory(user=UserFactory())
    outcomes = _add_files_concurrently([job.pk] * 6, b"v 0 0 0\n")
    assert sorted(outcomes) == ["stored"] * 2 + ["too_many_files"] * 4
    assert JobFile.objects.filter(job=job).count() == 2


# --- deleting files -------------------------------------------------------------------------


def test_cancelling_a_job_deletes_its_stored_files(auth_client, user, django_capture_on_commit_callbacks):
    job_id = post_import(auth_client).json()["id"]
    stored = JobFile.objects.get(job_id=job_id)
    storage, name = stored.file.storage, stored.file.name
    assert storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        assert auth_client.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    assert not JobFile.objects.filter(job_id=job_id).exists()
    assert not storage.exists(name)


def test_cancelling_a_retry_keeps_the_input_its_original_still_uses(user, django_capture_on_commit_callbacks):
    job = import_job(user)
    fail_job(job)
    retry, _ = services.job_retry(job=Job.objects.get(pk=job.pk))
    stored = JobFile.objects.get(job=job)
    with django_capture_on_commit_callbacks(execute=True):
        services.job_cancel(job=retry)
    assert not JobFile.objects.filter(job=retry).exists()
    assert stored.file.storage.exists(stored.file.name)


def _job_with_file(user, status: str, finished_days_ago: float):
    job = JobFactory(
        user=user, status=status, completed_at=timezone.now() - timedelta(days=finished_days_ago)
    )
    job_file = JobFile(
        job=job,
        role="output",
        prefix="models/",
        file_type="stl",
        size=3,
        sha256="0" * 64,
        content_type="model/stl",
    )
    job_file.file.save("x.stl", ContentFile(b"abc"), save=False)
    job_file.save()
    return job, job_file


def test_nightly_cleanup_deletes_files_of_jobs_dead_longer_than_the_setting(
    user, settings, django_capture_on_commit_callbacks, monkeypatch
):
    # given: time stands still, so both runs below fall in the same UTC day whenever this runs
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    settings.JOBS_DEAD_FILES_DAYS = 30
    _, old_failed = _job_with_file(user, "failed", 31)
    _, old_cancelled = _job_with_file(user, "cancelled", 45)
    _, recent_failed = _job_with_file(user, "failed", 29)
    _, old_completed = _job_with_file(user, "completed", 90)
    artifact = Artifact.objects.create(job=old_failed.job, user=user, type="render", file=old_failed)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        counts = tasks.cleanup_dead_files()
    # then
    assert counts == {"jobs": 2, "files": 2, "days": 30}
    assert set(JobFile.objects.values_list("pk", flat=True)) == {recent_failed.pk, old_completed.pk}
    for gone in (old_failed, old_cancelled):
        assert not gone.file.storage.exists(gone.file.name)
    artifact.refresh_from_db()
    assert artifact.file is None  # the vault item stays, without its file
    run = ScheduledRun.objects.get(task="jobs.cleanup_dead_files")
    assert run.outcome == "succeeded" and run.counts == counts
    # a second run the same day is a no-op
    _job_with_file(user, "failed", 40)
    assert tasks.cleanup_dead_files() is None
    assert ScheduledRun.objects.filter(task="jobs.cleanup_dead_files").count() == 1


def test_cleanup_age_is_configurable_and_works_in_batches(user, settings):
    settings.JOBS_DEAD_FILES_DAYS = 7
    for _ in range(5):
        _job_with_file(user, "failed", 8)
    _, kept = _job_with_file(user, "failed", 6)
    assert file_services.job_files_cleanup_dead(batch=2) == {"jobs": 5, "files": 5, "days": 7}
    assert list(JobFile.objects.values_list("pk", flat=True)) == [kept.pk]


def test_cleanup_is_scheduled_nightly_with_explicit_time_limits():
    [entry] = [s for s in SCHEDULES if s.task == "jobs.cleanup_dead_files"]
    assert entry.crontab == {"minute": "30", "hour": "4"} and entry.queue == "default"
    task = tasks.cleanup_dead_files
    assert task.name == "jobs.cleanup_dead_files"
    assert 0 < task.soft_time_limit < task.time_limit


def test_quota_settings_have_the_documented_defaults():
    from config.settings import base

    assert base.STORAGE_QUOTA_BYTES == 1024**3
    assert base.JOBS_MAX_FILES_PER_JOB == 10
    assert base.JOBS_DEAD_FILES_DAYS == 30
    assert base.JOBS_MAX_MESH_FACES == 2_000_000
    assert base.JOBS_FILES_ACCEL_REDIRECT_PREFIX == ""
    assert base.JOBS_FILES_SIGNED_URL_SECONDS == 300
    assert base.JOBS_MAX_FAILED_MODEL_IMPORTS_PER_DAY == 10


def test_check_upload_runs_the_mesh_check_only_for_models(settings):
    settings.JOBS_MAX_MESH_FACES = 0
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
    assert check_upload(upload("t.png", png), role="thumbnail").content_type == "image/png"
    with pytest.raises(ApplicationError):
        check_upload(upload("c.obj", cube_bytes("obj")), role="input")


# --- failed imports -------------------------------------------------------------------------

CORRUPT_STL = b"solid nonsense\nthis is not a mesh at all\n"


def test_failed_imports_give_the_slot_back_but_cannot_be_repeated_without_limit(auth_client, user, settings):
    # given: two imports of a corrupt file that fail in the worker
    settings.JOBS_MAX_FAILED_MODEL_IMPORTS_PER_DAY = 2
    for _ in range(2):
        bad = upload("bad.stl", CORRUPT_STL)
        response = auth_client.post("/api/jobs", {"kind": "model_import", "input": bad}, format="multipart")
        assert response.status_code == 201, response.content
        assert run_all() == ["failed"]
    user.refresh_from_db()
    assert user.models_used == 0
    # when: a third import is asked for
    response = post_import(auth_client)
    # then: refused as a limit, and nothing (job, slot, file) persists
    assert_error(response, 429, "too_many_failed_imports")
    user.refresh_from_db()
    assert user.models_used == 0 and Job.objects.count() == 2 and JobFile.objects.count() == 2


def test_failed_imports_older_than_a_day_or_of_other_kinds_do_not_count(auth_client, user, settings):
    settings.JOBS_MAX_FAILED_MODEL_IMPORTS_PER_DAY = 1
    old = import_job(user)
    fail_job(old, completed_at=timezone.now() - timedelta(hours=25))
    JobFactory(user=user, status="failed", completed_at=timezone.now())  # account_batch
    assert post_import(auth_client).status_code == 201
