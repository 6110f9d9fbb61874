from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.files import download_name
from jobs.models import Artifact, JobFile


def download_url(job_file: JobFile) -> str:
    """The API path that serves this file to its owner (root-relative, so it holds behind any
    proxy). Stored objects are never exposed by their storage URL: nothing serves MEDIA_URL."""
    return reverse("job-file-download", kwargs={"job_id": job_file.job_id, "file_id": job_file.pk})


# Output only: declared read-only fields (see jobs.serializers.JobOutputSerializer).
class JobFileSerializer(serializers.Serializer):
    """A file of a job, downloaded through its API path (never its storage URL)."""

    id = serializers.UUIDField(read_only=True)
    role = serializers.ChoiceField(choices=JobFile.Role.choices, read_only=True)
    name = serializers.SerializerMethodField()
    file_type = serializers.CharField(read_only=True, help_text="Lower-case extension, e.g. stl, mp4.")
    original_name = serializers.CharField(read_only=True)
    size = serializers.IntegerField(read_only=True)
    sha256 = serializers.CharField(read_only=True)
    content_type = serializers.CharField(read_only=True)
    download_url = serializers.SerializerMethodField()
    # Kept for clients of the first API version; the same value as download_url.
    url = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)

    def get_name(self, obj) -> str:
        return download_name(obj.original_name, obj.file_type, obj.role)

    def get_download_url(self, obj) -> str:
        return download_url(obj)

    def get_url(self, obj) -> str:
        return download_url(obj)


class ArtifactSerializer(serializers.ModelSerializer):
    job = serializers.UUIDField(source="job_id")
    kind = serializers.CharField(source="job.kind.code")
    file_id = serializers.UUIDField(allow_null=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Artifact
        fields = ["id", "job", "kind", "type", "name", "data", "file_id", "download_url", "created_at"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_download_url(self, obj) -> str | None:
        return download_url(obj.file) if obj.file_id else None
