"""Job files and the vault: list, download, artifacts.

How the bytes leave, in order of preference:
1. JOBS_FILES_ACCEL_REDIRECT_PREFIX set: an empty 200 with `X-Accel-Redirect` — the front proxy
   (nginx, an `internal` location aliased to the media root) sends the file; Django only checks
   ownership.
2. A remote storage (no local path, e.g. django-storages S3 with querystring auth): a 302 to a
   signed URL valid JOBS_FILES_SIGNED_URL_SECONDS.
3. Otherwise (`make run`, tests): Django streams it with FileResponse.
Every case answers 404 (never 403) to anyone but the owner.
"""

from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.views import APIView

from accounts.permissions import IsUserAccount
from config.exceptions import NotFound
from jobs import apis, selectors
from jobs.file_serializers import ArtifactSerializer, JobFileSerializer
from jobs.files import download_name
from jobs.filters import ArtifactFilter
from jobs.models import Artifact, JobFile, ModelExport
from jobs.services.models3d import model_export_download


def _is_local(storage, name: str) -> bool:
    try:
        storage.path(name)
    except NotImplementedError:
        return False
    return True


def _signed_url(storage, name: str, disposition: str) -> str:
    try:  # django-storages' S3Storage: a presigned URL that also names the download
        return storage.url(
            name,
            parameters={"ResponseContentDisposition": disposition},
            expire=settings.JOBS_FILES_SIGNED_URL_SECONDS,
        )
    except TypeError:  # another remote backend: its own url() is the signed one
        return storage.url(name)


def job_file_response(job_file: JobFile) -> HttpResponse:
    """The response that delivers `job_file` as an attachment (the caller checked ownership)."""
    filename = download_name(job_file.original_name, job_file.file_type, job_file.role)
    disposition = content_disposition_header(True, filename)
    name = job_file.file.name
    prefix = settings.JOBS_FILES_ACCEL_REDIRECT_PREFIX
    if prefix:
        response = HttpResponse(status=200, content_type=job_file.content_type)
        response["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + quote(name)
        response["Content-Disposition"] = disposition
        return response
    storage = job_file.file.storage
    if not _is_local(storage, name):
        return HttpResponseRedirect(_signed_url(storage, name, disposition))
    try:
        handle = storage.open(name, "rb")
    except FileNotFoundError:
        raise NotFound("File not found.") from None
    return FileResponse(handle, as_attachment=True, filename=filename, content_type=job_file.content_type)


# What a file download answers (an export's file, whichever path serves it, also 410 `expired`).
DOWNLOAD_RESPONSES = {
    (200, "application/octet-stream"): OpenApiTypes.BINARY,
    302: OpenApiResponse(description="Signed storage URL (S3)."),
    404: OpenApiResponse(description="Not the owner's file."),
    410: OpenApiResponse(description="An export's download link has expired (`expired`)."),
}


class AnyAccept(BaseContentNegotiation):
    """A download answers whatever the client accepts (a file, or the JSON error envelope)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class JobFilesApi(apis.JobFileUploadApi):
    """GET: a job's files with their download URLs (paginated). POST: upload (see the parent)."""

    pagination_class = ListAPIView.pagination_class

    @extend_schema(responses=JobFileSerializer(many=True))
    def get(self, request, job_id):
        files = selectors.job_file_list(user=request.user, job_id=job_id)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(files, request, view=self)
        return paginator.get_paginated_response(JobFileSerializer(page, many=True).data)


class JobFileDownloadApi(APIView):
    permission_classes = [IsUserAccount]
    content_negotiation_class = AnyAccept

    @extend_schema(responses=DOWNLOAD_RESPONSES)
    def get(self, request, job_id, file_id):
        job_file = selectors.job_file_get(user=request.user, job_id=job_id, file_id=file_id)
        if job_file.role == JobFile.Role.OUTPUT:
            # An export's file is counted and expires whichever path asks for it.
            export = ModelExport.objects.filter(job_id=job_file.job_id).select_related("job").first()
            if export is not None:
                job_file = model_export_download(export=export, job_file=job_file)
        return job_file_response(job_file)


class VaultApi(ListAPIView):
    """The user's artifacts (created accounts, rendered files, imported models)."""

    permission_classes = [IsUserAccount]
    serializer_class = ArtifactSerializer
    filterset_class = ArtifactFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Artifact.objects.none()
        return selectors.artifact_list(user=self.request.user)
