from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.files import download_name
from jobs.models import Artifact, JobFile


def download_url(job_file: JobFile) -> str:
    """The API path that serves this file to its owner (root-relative, so it holds behind any
    proxy). Stored objects are never exposed by their storage URL: nothing serves MEDIA_URL."""
    return reverse("job-file-download", kwargs={"job_id": job_file.job_id, "file_id": job_file.pk})


def datetime_output(value) -> str | None:
    """A datetime as DRF's DateTimeField renders it (ISO 8601 in the current time zone, UTC
    written `Z`)."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def job_file_output(job_file: JobFile) -> dict:
    """What JobFileSerializer renders."""
    url = download_url(job_file)
    return {
        "id": str(job_file.pk),
        "role": str(job_file.role),
        "name": download_name(job_file.original_name, job_file.file_type, job_file.role),
        "file_type": job_file.file_type,
        "original_name": job_file.original_name,
        "size": job_file.size,
        "sha256": job_file.sha256,
        "content_type": job_file.content_type,
        "download_url": url,
        "url": url,
        "created_at": datetime_output(job_file.created_at),
    }


class JobFileSerializer(serializers.Serializer):
    """A file of a job, downloaded through its API path (never its storage URL)."""

    # The declared fields are the contract (the schema); rendering is job_file_output's, with no
    # field objects built per response (tests/config/test_serializers.py holds the two together).
    id = serializers.UUIDField(read_only=True)
    role = serializers.ChoiceField(choices=JobFile.Role.choices, read_only=True)
    name = serializers.CharField(read_only=True)
    file_type = serializers.CharField(read_only=True, help_text="Lower-case extension, e.g. stl, mp4.")
    original_name = serializers.CharField(read_only=True)
    size = serializers.IntegerField(read_only=True)
    sha256 = serializers.CharField(read_only=True)
    content_type = serializers.CharField(read_only=True)
    download_url = serializers.CharField(read_only=True)
    # Kept for clients of the first API version; the same value as download_url.
    url = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)

    def to_representation(self, instance):
        return job_file_output(instance)


class ArtifactSerializer(serializers.ModelSerializer):
    job = serializers.UUIDField(source="job_id")
    kind = serializers.CharField(source="job.kind.code")
    file_id = serializers.UUIDField(allow_null=True)
    download_url = serializers.SerializerMethodField(allow_null=True)

    class Meta:
        model = Artifact
        fields = ["id", "job", "kind", "type", "name", "data", "file_id", "download_url", "created_at"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_download_url(self, obj) -> str | None:
        return download_url(obj.file) if obj.file_id else None
