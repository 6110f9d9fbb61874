"""Serializers of the model lifecycle: models, exports, projects."""

from datetime import datetime

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.model_selectors import export_expires_at
from jobs.models import EXPORT_FORMATS, LENGTH_UNITS, Job, ModelExport, Project

EXPORT_STATUSES = ("pending", "queued", "preparing", "processing", "finalizing", "retrying") + (
    "ready",
    "expired",
    "failed",
    "cancelled",
)


class ModelSerializer(serializers.ModelSerializer):
    """An imported model: its import job's id, status and what the import measured."""

    id = serializers.UUIDField(read_only=True)
    name = serializers.SerializerMethodField()
    file_type = serializers.SerializerMethodField()
    vertex_count = serializers.SerializerMethodField()
    face_count = serializers.SerializerMethodField()
    dimensions = serializers.SerializerMethodField()
    volume = serializers.SerializerMethodField()
    is_valid = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "name",
            "status",
            "file_type",
            "vertex_count",
            "face_count",
            "dimensions",
            "volume",
            "is_valid",
            "created_at",
            "completed_at",
        ]

    def _result(self, obj) -> dict:
        return obj.result if isinstance(obj.result, dict) else {}

    def get_name(self, obj) -> str:
        """The uploaded file's name (model_list prefetches the input files)."""
        files = getattr(obj, "input_files", None)
        if files is None:
            files = list(obj.files.filter(role="input").order_by("created_at"))
        return files[0].original_name if files else ""

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_file_type(self, obj):
        return self._result(obj).get("file_type")

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_vertex_count(self, obj):
        return self._result(obj).get("vertex_count")

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_face_count(self, obj):
        return self._result(obj).get("face_count")

    @extend_schema_field(serializers.ListField(child=serializers.FloatField(), allow_null=True))
    def get_dimensions(self, obj):
        return self._result(obj).get("dimensions")

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_volume(self, obj):
        return self._result(obj).get("volume")

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_is_valid(self, obj):
        return self._result(obj).get("is_valid")


class ModelExportSerializer(serializers.ModelSerializer):
    """An export with the options it was made with. `status` is the export job's status, except
    that a completed export is `ready` until its link expires and `expired` after."""

    format = serializers.ChoiceField(choices=EXPORT_FORMATS)
    units = serializers.ChoiceField(choices=LENGTH_UNITS)
    source_units = serializers.ChoiceField(choices=LENGTH_UNITS)
    job = serializers.UUIDField(source="job_id")
    source_model = serializers.UUIDField(source="source_job_id", allow_null=True)
    status = serializers.SerializerMethodField()
    expires_at = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ModelExport
        fields = [
            "id",
            "job",
            "source_model",
            "status",
            "format",
            "units",
            "source_units",
            "scale",
            "include_normals",
            "include_colors",
            "include_textures",
            "download_count",
            "last_downloaded_at",
            "expires_at",
            "download_url",
            "created_at",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=EXPORT_STATUSES))
    def get_status(self, obj) -> str:
        expires_at = export_expires_at(obj)
        if expires_at is None:
            return obj.job.status
        return "expired" if timezone.now() >= expires_at else "ready"

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_expires_at(self, obj) -> datetime | None:
        return export_expires_at(obj)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_download_url(self, obj) -> str | None:
        if obj.job.status != Job.Status.COMPLETED:
            return None
        return reverse("model-export-download", kwargs={"export_id": obj.pk})


class StrictCharField(serializers.CharField):
    """A string, never a number turned into one (a wrong type is a 400)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ProjectInputSerializer(serializers.Serializer):
    """Create (all but `name` optional) or update (PATCH: any subset; `models` replaces the set)."""

    name = StrictCharField(max_length=120)
    description = StrictCharField(max_length=2000, allow_blank=True, required=False)
    models = serializers.ListField(child=serializers.UUIDField(), max_length=500, required=False)

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return value


class ProjectSerializer(serializers.ModelSerializer):
    models = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "description", "models", "created_at", "updated_at"]

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_models(self, obj) -> list[str]:
        """The project's live models (a deleted model leaves every project)."""
        return [str(job.pk) for job in obj.models.all()]
