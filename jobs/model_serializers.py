"""Serializers of the model lifecycle: models, exports, projects."""

from datetime import datetime, timedelta

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


class BoundingBoxSerializer(serializers.Serializer):
    """The corners of the axis-aligned box around the mesh, in its file's units."""

    min = serializers.ListField(child=serializers.FloatField(), min_length=3, max_length=3)
    max = serializers.ListField(child=serializers.FloatField(), min_length=3, max_length=3)


class ModelSerializer(serializers.ModelSerializer):
    """An imported model: its import job's id, status and what the import measured."""

    id = serializers.UUIDField(read_only=True)
    name = serializers.SerializerMethodField()
    file_type = serializers.SerializerMethodField(allow_null=True)
    vertex_count = serializers.SerializerMethodField(allow_null=True)
    face_count = serializers.SerializerMethodField(allow_null=True)
    dimensions = serializers.SerializerMethodField(allow_null=True)
    bounding_box = serializers.SerializerMethodField(allow_null=True)
    volume = serializers.SerializerMethodField(allow_null=True)
    is_valid = serializers.SerializerMethodField(allow_null=True)
    validation_errors = serializers.SerializerMethodField(allow_null=True)
    thumbnail_url = serializers.SerializerMethodField(allow_null=True)
    number_of_exports_done = serializers.SerializerMethodField()

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
            "bounding_box",
            "volume",
            "is_valid",
            "validation_errors",
            "thumbnail_url",
            "number_of_exports_done",
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

    @extend_schema_field(BoundingBoxSerializer(allow_null=True))
    def get_bounding_box(self, obj):
        return self._result(obj).get("bounding_box")

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_is_valid(self, obj):
        return self._result(obj).get("is_valid")

    @extend_schema_field(serializers.ListField(child=serializers.CharField(), allow_null=True))
    def get_validation_errors(self, obj):
        """Why the mesh is not a valid solid (empty when it is; null until it was measured)."""
        return self._result(obj).get("validation_errors")

    def get_number_of_exports_done(self, obj) -> int:
        """Exports of this model that completed (model_list counts them in its query)."""
        done = getattr(obj, "exports_done", None)
        if done is None:
            done = obj.exports.filter(job__status=Job.Status.COMPLETED).count()
        return done

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_thumbnail_url(self, obj) -> str | None:
        """The PNG rendered by the import (its job file's download path); null until it exists."""
        files = getattr(obj, "thumbnail_files", None)
        if files is None:
            files = list(obj.files.filter(role="thumbnail").order_by("created_at"))
        if not files:
            return None
        return reverse("job-file-download", kwargs={"job_id": obj.pk, "file_id": files[0].pk})


class ModelExportSerializer(serializers.ModelSerializer):
    """An export with the options it was made with. `status` is the export job's status, except
    that a completed export is `ready` until its link expires and `expired` after."""

    format = serializers.ChoiceField(choices=EXPORT_FORMATS)
    units = serializers.ChoiceField(choices=LENGTH_UNITS)
    source_units = serializers.ChoiceField(choices=LENGTH_UNITS)
    job = serializers.UUIDField(source="job_id")
    source_model = serializers.UUIDField(source="source_job_id", allow_null=True)
    status = serializers.SerializerMethodField()
    expires_at = serializers.SerializerMethodField(allow_null=True)
    download_url = serializers.SerializerMethodField(allow_null=True)
    processing_time = serializers.SerializerMethodField(allow_null=True)

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
            "include_baseplate",
            "baseplate_thickness_mm",
            "processing_time",
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

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_processing_time(self, obj) -> float | None:
        """Seconds the worker took to read and convert the model (null until it completed)."""
        duration = obj.processing_time
        return duration.total_seconds() if duration is not None else None

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
    tooling_applied = serializers.ListField(
        child=StrictCharField(max_length=64), max_length=20, required=False
    )

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return value


class ProjectTransitionInputSerializer(serializers.Serializer):
    """Move a project along its lifecycle (draft → processing → completed → archived / deleted)."""

    status = serializers.ChoiceField(choices=Project.Status.choices)


class ProjectSerializer(serializers.ModelSerializer):
    models = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=Project.Status.choices, read_only=True)
    tooling_applied = serializers.ListField(child=serializers.CharField(), read_only=True)
    processing_time = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "description",
            "status",
            "tooling_applied",
            "models",
            "processing_time",
            "completed_at",
            "archived_at",
            "created_at",
            "updated_at",
        ]

    def get_processing_time(self, obj) -> float:
        """Seconds spent in `processing`, summed over every stay (a stay still running counts
        up to now)."""
        total = obj.processing_time
        if obj.status == Project.Status.PROCESSING and obj.processing_started_at is not None:
            total += max(timezone.now() - obj.processing_started_at, timedelta(0))
        return total.total_seconds()

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_models(self, obj) -> list[str]:
        """The project's live models (a deleted model leaves every project)."""
        return [str(job.pk) for job in obj.models.all()]
