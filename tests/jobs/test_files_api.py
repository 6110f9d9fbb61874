"""Job files, downloads and the vault: every URL the API returns resolves."""

import hashlib
import re
from urllib.parse import unquote, urlsplit

import pytest
import trimesh
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Artifact, Job, JobFile
from tests.conftest import assert_error, client_for
from tests.factories import UserFactory, admin_login
from tests.jobs.conftest import give_credits
from tests.jobs.model_helpers import mesh_bytes, run_all

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def cube_bytes(file_type: str) -> bytes:
    return mesh_bytes(trimesh.creation.box(extents=(1.0, 1.0, 1.0)), file_type)


def import_via_api(client, name="cube.stl", data=None):
    data = cube_bytes("stl") if data is None else data
    response = client.post(
        "/api/jobs", {"kind": "model_import", "input": SimpleUploadedFile(name, data)}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return response


def urls_in(body) -> list[str]:
    """Every URL in a JSON body: values of keys ending in `url`, and any string that starts with
    http or /api/."""
    found = []

    def walk(node, key=""):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)
        elif isinstance(node, str) and (key.endswith("url") or node.startswith(("http", "/api/"))):
            found.append(node)

    walk(body)
    return found


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_every_url_any_jobs_response_returns_resolves_for_the_owner_and_is_404_for_another(user):
    # given: an imported model, an export of it (an output file and a vault item with a file),
    # and a job with a thumbnail uploaded to it
    give_credits(user, 10)
    owner, other = client_for(user), client_for(UserFactory())
    responses = [import_via_api(owner)]
    source_id = responses[0].json()["id"]
    run_all()
    responses.append(
        owner.post(
            "/api/jobs",
            {"kind": "model_export", "params": {"format": "obj", "source_job_id": source_id}},
            format="json",
        )
    )
    assert run_all() == ["completed"]
    batch = owner.post("/api/jobs", {"kind": "account_batch", "requested_count": 1}, format="json")
    responses.append(
        owner.post(
            f"/api/jobs/{batch.json()['id']}/files",
            {"file": SimpleUploadedFile("shot.png", PNG), "role": "thumbnail"},
            format="multipart",
        )
    )
    # when: every read endpoint of jobs is asked, with small pages so pagination links appear
    for job in Job.objects.filter(user=user):
        responses += [
            owner.get(f"/api/jobs/{job.pk}"),
            owner.get(f"/api/job/{job.external_id}"),
            owner.get(f"/api/jobs/{job.pk}/files"),
            owner.get(f"/api/jobs/{job.pk}/files?page_size=1"),
        ]
    responses += [
        owner.get("/api/jobs"),
        owner.get("/api/jobs?page_size=1"),
        owner.get("/api/vault"),
        owner.get("/api/vault?page_size=1"),
    ]
    assert all(r.status_code in (200, 201) for r in responses), [r.content for r in responses]
    urls = sorted({u for r in responses for u in urls_in(r.json())})
    # then: downloads for all four files (the model, the thumbnail its import rendered, the
    # export, the uploaded thumbnail), and pagination links, are among them
    downloads = [u for u in urls if u.endswith("/download")]
    assert len(downloads) == JobFile.objects.filter(job__user=user).count() == 4
    assert any("page=2" in u for u in urls)
    owned_ids = {str(pk) for pk in Job.objects.filter(user=user).values_list("pk", flat=True)} | {
        str(pk) for pk in JobFile.objects.filter(job__user=user).values_list("pk", flat=True)
    }
    for url in urls:
        mine = owner.get(_path(url))
        assert mine.status_code == 200, (url, mine.status_code)
        theirs = other.get(_path(url))
        if UUID_RE.search(urlsplit(url).path):  # names an object: another user never sees it
            assert_error(theirs, 404, "not_found")
        else:  # a list: the other user gets their own (empty) page or no such page
            assert theirs.status_code in (200, 404)
            assert not owned_ids & set(UUID_RE.findall(theirs.content.decode()))
    for url in downloads:
        job_file = JobFile.objects.get(pk=url.rstrip("/").split("/")[-2])
        body = b"".join(owner.get(_path(url)).streaming_content)
        assert hashlib.sha256(body).hexdigest() == job_file.sha256


def test_files_list_shows_what_a_client_needs(auth_client, user):
    job_id = import_via_api(auth_client, name="My Part.stl").json()["id"]
    response = auth_client.get(f"/api/jobs/{job_id}/files/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1 and body["next"] is None
    [item] = body["results"]
    stored = JobFile.objects.get(job_id=job_id)
    assert item["role"] == "input" and item["name"] == "My Part.stl" and item["size"] == stored.size
    assert item["sha256"] == stored.sha256 and item["content_type"] == "model/stl" and item["created_at"]
    assert item["download_url"] == f"/api/jobs/{job_id}/files/{stored.pk}/download" == item["url"]


def test_download_is_an_attachment_with_a_safe_filename(auth_client, user):
    data = cube_bytes("stl")
    job_id = import_via_api(auth_client, data=data).json()["id"]
    # A name the multipart parser would already have cleaned: the stored value is not trusted either.
    JobFile.objects.filter(job_id=job_id).update(original_name='..\\../evil"name\r\n;x.stl')
    stored = JobFile.objects.get(job_id=job_id)
    response = auth_client.get(
        f"/api/jobs/{job_id}/files/{stored.pk}/download", HTTP_ACCEPT="application/octet-stream"
    )
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    assert response["Content-Type"] == "model/stl"
    assert response["Content-Disposition"] == 'attachment; filename="evil_name_x.stl"'


def test_download_of_another_users_file_or_through_another_job_is_404(auth_client, other_client, user):
    job_id = import_via_api(auth_client).json()["id"]
    other_job_id = import_via_api(auth_client).json()["id"]
    file_id = JobFile.objects.get(job_id=job_id).pk
    assert_error(other_client.get(f"/api/jobs/{job_id}/files/{file_id}/download"), 404, "not_found")
    assert_error(other_client.get(f"/api/jobs/{job_id}/files"), 404, "not_found")
    assert_error(auth_client.get(f"/api/jobs/{other_job_id}/files/{file_id}/download"), 404, "not_found")


def test_download_of_a_file_missing_from_storage_is_404_not_500(auth_client, user):
    job_id = import_via_api(auth_client).json()["id"]
    stored = JobFile.objects.get(job_id=job_id)
    stored.file.storage.delete(stored.file.name)
    assert_error(auth_client.get(f"/api/jobs/{job_id}/files/{stored.pk}/download"), 404, "not_found")


def test_file_endpoints_and_vault_refuse_anonymous_callers(api_client, auth_client, user):
    job_id = import_via_api(auth_client).json()["id"]
    file_id = JobFile.objects.get(job_id=job_id).pk
    for path in (f"/api/jobs/{job_id}/files", f"/api/jobs/{job_id}/files/{file_id}/download", "/api/vault"):
        assert_error(api_client.get(path), 401)


def test_with_an_accel_redirect_prefix_the_proxy_sends_the_bytes(auth_client, user, settings):
    settings.JOBS_FILES_ACCEL_REDIRECT_PREFIX = "/protected-media/"
    job_id = import_via_api(auth_client, name="part.stl").json()["id"]
    stored = JobFile.objects.get(job_id=job_id)
    response = auth_client.get(f"/api/jobs/{job_id}/files/{stored.pk}/download")
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == f"/protected-media/{stored.file.name}"
    assert response["Content-Disposition"] == 'attachment; filename="part.stl"'
    assert_error(client_for(UserFactory()).get(f"/api/jobs/{job_id}/files/{stored.pk}/download"), 404)


class RemoteLikeStorage(FileSystemStorage):
    """A storage without local paths whose url() signs like django-storages' S3Storage."""

    def path(self, name):
        raise NotImplementedError

    def url(self, name, parameters=None, expire=None, http_method=None):
        disposition = (parameters or {}).get("ResponseContentDisposition", "")
        return f"https://bucket.example/{name}?X-Amz-Expires={expire}&disposition={disposition}"


def test_with_remote_storage_the_download_redirects_to_a_short_lived_signed_url(auth_client, user, settings):
    job_id = import_via_api(auth_client, name="part.stl").json()["id"]
    stored = JobFile.objects.get(job_id=job_id)
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": f"{__name__}.RemoteLikeStorage"}}
    settings.JOBS_FILES_SIGNED_URL_SECONDS = 120
    response = auth_client.get(f"/api/jobs/{job_id}/files/{stored.pk}/download")
    assert response.status_code == 302
    assert unquote(response["Location"]) == (
        f"https://bucket.example/{stored.file.name}?X-Amz-Expires=120"
        '&disposition=attachment; filename="part.stl"'
    )


def _artifact(user, job, type_="account", name="a"):
    return Artifact.objects.create(job=job, user=user, type=type_, name=name)


def test_vault_lists_own_artifacts_filtered_by_type_kind_job_and_dates(auth_client, user, other_user):
    from tests.jobs.factories import JobFactory

    batch = JobFactory(user=user)
    model = JobFactory(user=user, kind=batch.kind.__class__.objects.get(code="model_import"))
    a1 = _artifact(user, batch, "account", "first")
    a2 = _artifact(user, model, "model", "cube.stl")
    _artifact(other_user, JobFactory(user=other_user), "account", "theirs")
    Artifact.objects.filter(pk=a1.pk).update(created_at="2026-01-05T23:59:59Z")
    Artifact.objects.filter(pk=a2.pk).update(created_at="2026-01-06T00:00:00Z")

    def ids(query=""):
        response = auth_client.get(f"/api/vault{query}")
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["results"]]

    assert ids() == [str(a2.pk), str(a1.pk)]
    assert ids("?type=model") == [str(a2.pk)]
    assert ids("?kind=account_batch") == [str(a1.pk)]
    assert ids(f"?job={model.pk}") == [str(a2.pk)]
    assert ids("?from=2026-01-06") == [str(a2.pk)]
    assert ids("?to=2026-01-05") == [str(a1.pk)]
    item = auth_client.get("/api/vault?type=model").json()["results"][0]
    assert item["job"] == str(model.pk) and item["kind"] == "model_import" and item["download_url"] is None


@pytest.mark.parametrize(
    "query", ["?from=yesterday", "?to=2026-13-01", "?job=not-a-uuid", "?page_size=abc", "?type=" + "x" * 40]
)
def test_vault_with_bad_filters_is_400_envelope(auth_client, user, query):
    response = auth_client.get(f"/api/vault{query}")
    assert_error(response, 400)


def test_vault_and_files_list_query_counts_do_not_grow_with_rows(
    auth_client, user, django_assert_max_num_queries
):
    from tests.jobs.factories import JobFactory

    job = JobFactory(user=user)
    for i in range(3):
        stored = JobFile.objects.create(
            job=job,
            role="output",
            prefix="models/",
            file=f"models/x{i}.stl",
            file_type="stl",
            size=1,
            sha256="0" * 64,
            content_type="model/stl",
        )
        Artifact.objects.create(job=job, user=user, type="model", name=f"m{i}", file=stored)
    with django_assert_max_num_queries(4) as vault_small:
        assert auth_client.get("/api/vault").json()["count"] == 3
    with django_assert_max_num_queries(5) as files_small:
        assert auth_client.get(f"/api/jobs/{job.pk}/files").json()["count"] == 3
    for i in range(3, 30):
        stored = JobFile.objects.create(
            job=job,
            role="output",
            prefix="models/",
            file=f"models/x{i}.stl",
            file_type="stl",
            size=1,
            sha256="0" * 64,
            content_type="model/stl",
        )
        Artifact.objects.create(job=job, user=user, type="model", name=f"m{i}", file=stored)
    with django_assert_max_num_queries(len(vault_small.captured_queries)):
        assert len(auth_client.get("/api/vault?page_size=30").json()["results"]) == 30
    with django_assert_max_num_queries(len(files_small.captured_queries)):
        assert len(auth_client.get(f"/api/jobs/{job.pk}/files?page_size=30").json()["results"]) == 30


@pytest.fixture
def admin_client(client):
    admin_login(client, UserFactory(is_staff=True, is_superuser=True))
    return client


def test_admin_job_page_links_each_file_to_a_download_that_resolves(admin_client, user, client):
    auth = client_for(user)
    job_id = import_via_api(auth, name="part.stl").json()["id"]
    stored = JobFile.objects.get(job_id=job_id)
    page = admin_client.get(f"/admin/jobs/job/{job_id}/change/").content.decode()
    hrefs = re.findall(r'href="([^"]*/download/)"', page)
    assert hrefs == [f"/admin/jobs/job/{job_id}/files/{stored.pk}/download/"]
    assert "/media/" not in page
    response = admin_client.get(hrefs[0])
    assert response.status_code == 200
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == stored.sha256


def test_with_django_storages_s3_the_download_is_a_presigned_url_that_expires(auth_client, user, settings):
    """The real S3 backend (django-storages + boto3): presigning needs no network, so the
    endpoint below is never contacted."""
    job_id = import_via_api(auth_client, name="part.stl").json()["id"]
    stored = JobFile.objects.get(job_id=job_id)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "exports",
                "endpoint_url": "http://127.0.0.1:9",
                "access_key": "AKIATEST",
                "secret_key": "not-a-real-secret",
                "region_name": "us-east-1",
                "querystring_auth": True,
                "signature_version": "s3v4",
            },
        },
    }
    settings.JOBS_FILES_SIGNED_URL_SECONDS = 120

    response = auth_client.get(f"/api/jobs/{job_id}/files/{stored.pk}/download")

    assert response.status_code == 302
    location = unquote(response["Location"])
    assert location.startswith(f"http://127.0.0.1:9/exports/{stored.file.name}?")
    assert "X-Amz-Expires=120" in location and "X-Amz-Signature=" in location
    assert 'response-content-disposition=attachment; filename="part.stl"' in location
    assert_error(client_for(UserFactory()).get(f"/api/jobs/{job_id}/files/{stored.pk}/download"), 404)
