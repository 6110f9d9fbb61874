import json
import re
from datetime import date, timedelta

from django.utils import timezone
from rest_framework import serializers

from config.parsers import JSON_MAX_DEPTH, has_unstorable_text, json_loads, json_too_deep
from jobs.export_options import CAD_FORMATS
from jobs.file_serializers import JobFileSerializer, datetime_output, job_file_output
from jobs.models import EXPORT_FORMATS, EXTERNAL_ID_MAX, VAULT_KINDS, Job, JobFile
from jobs.states import JobStatus

EXTERNAL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
MAX_PARAMS_BYTES = 64 * 1024


def validate_external_id(value: str) -> str:
    if not EXTERNAL_ID_RE.match(value):
        raise serializers.ValidationError("Use letters, digits and . _ : - only.")
    return value


class ParamsField(serializers.JSONField):
    """A JSON object; in multipart requests it arrives as a JSON string."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = json_loads(data)
            except ValueError as exc:
                raise serializers.ValidationError(f"Must be a JSON object ({str(exc)[:100]}).") from None
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        if json_too_deep(data):
            raise serializers.ValidationError(f"Must not nest deeper than {JSON_MAX_DEPTH} levels.")
        if has_unstorable_text(data):
            raise serializers.ValidationError("Must not contain NUL characters.")
        if len(json.dumps(data)) > MAX_PARAMS_BYTES:
            raise serializers.ValidationError(f"At most {MAX_PARAMS_BYTES} bytes.")
        return data


class JobCreateInputSerializer(serializers.Serializer):
    kind = serializers.CharField(max_length=64)
    params = ParamsField(required=False, default=dict)
    requested_count = serializers.IntegerField(min_value=1, max_value=100_000, default=1)
    priority = serializers.IntegerField(min_value=-100, max_value=100, default=0)
    external_id = serializers.CharField(
        max_length=EXTERNAL_ID_MAX, required=False, validators=[validate_external_id]
    )
    input = serializers.FileField(required=False, allow_empty_file=False, max_length=255)

    def validate(self, attrs):
        if attrs["kind"] == "model_export":
            fmt = attrs["params"].get("format")
            # STEP/IGES are answered 400 format_unsupported by the export options' check.
            if fmt not in EXPORT_FORMATS and not (isinstance(fmt, str) and fmt.lower() in CAD_FORMATS):
                raise serializers.ValidationError(
                    {"params": [f"params.format must be one of {', '.join(EXPORT_FORMATS)}."]}
                )
            source = attrs["params"].get("source_job_id")
            if source is not None:
                try:
                    serializers.UUIDField().to_internal_value(source)
                except serializers.ValidationError:
                    raise serializers.ValidationError(
                        {"params": ["params.source_job_id must be a UUID."]}
                    ) from None
        return attrs


class ModelImportInputSerializer(JobCreateInputSerializer):
    """`POST /api/models/import`: a `model_import` job (multipart, the model file as `input`)."""

    kind = None
    requested_count = None
    input = serializers.FileField(allow_empty_file=False, max_length=255)

    def validate(self, attrs):
        return super().validate({**attrs, "kind": "model_import", "requested_count": 1})


class JobCreateJsonInputSerializer(JobCreateInputSerializer):
    """The JSON body of POST /api/jobs: everything but the file (which needs multipart)."""

    input = None


class JobFileInputSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=False, max_length=255)
    role = serializers.ChoiceField(choices=JobFile.Role.choices, default=JobFile.Role.OUTPUT)


# A job's files are listed with their download endpoint, never their storage URL (jobs.file_serializers).
JobFileOutputSerializer = JobFileSerializer


class JobOutputSerializer(serializers.Serializer):
    """A job as its owner sees it."""

    # The declared fields are the contract (the schema); rendering is job_output's: reading 26
    # attributes directly instead of building 26 field objects per response was ~0.4 ms of
    # POST /api/jobs (docs/BENCHMARKS.md, issue 19). tests/config/test_serializers.py holds the
    # two to the same output.
    id = serializers.UUIDField(read_only=True)
    external_id = serializers.CharField(read_only=True)
    kind = serializers.CharField(source="kind.code", read_only=True)
    status = serializers.ChoiceField(choices=JobStatus.choices, read_only=True)
    priority = serializers.IntegerField(read_only=True, help_text="Higher runs first.")
    params = serializers.JSONField(read_only=True)
    requested_count = serializers.IntegerField(read_only=True)
    successful_count = serializers.IntegerField(read_only=True)
    failed_count = serializers.IntegerField(read_only=True)
    progress = serializers.IntegerField(read_only=True)
    attempts = serializers.IntegerField(read_only=True)
    max_retries = serializers.IntegerField(read_only=True)
    next_attempt_at = serializers.DateTimeField(read_only=True, allow_null=True)
    heartbeat_at = serializers.DateTimeField(read_only=True, allow_null=True)
    credits_charged = serializers.IntegerField(read_only=True)
    credits_refunded = serializers.IntegerField(read_only=True)
    credits_spent = serializers.IntegerField(read_only=True)
    result = serializers.JSONField(read_only=True)
    error = serializers.CharField(read_only=True)
    retry_of = serializers.UUIDField(source="retry_of_id", read_only=True, allow_null=True)
    files = JobFileOutputSerializer(many=True, read_only=True, source="listed_files")
    created_at = serializers.DateTimeField(read_only=True)
    queued_at = serializers.DateTimeField(read_only=True, allow_null=True)
    started_at = serializers.DateTimeField(read_only=True, allow_null=True)
    completed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def to_representation(self, instance):
        return job_output(instance)


def job_output(job: Job) -> dict:
    """What JobOutputSerializer renders, from a row of `selectors.job_list` (kind joined, files
    prefetched into `listed_files`) or a job shaped by `selectors.job_as_listed`."""
    return {
        "id": str(job.pk),
        "external_id": job.external_id,
        "kind": job.kind.code,
        "status": str(job.status),
        "priority": job.priority,
        "params": job.params,
        "requested_count": job.requested_count,
        "successful_count": job.successful_count,
        "failed_count": job.failed_count,
        "progress": job.progress,
        "attempts": job.attempts,
        "max_retries": job.max_retries,
        "next_attempt_at": datetime_output(job.next_attempt_at),
        "heartbeat_at": datetime_output(job.heartbeat_at),
        "credits_charged": job.credits_charged,
        "credits_refunded": job.credits_refunded,
        "credits_spent": job.credits_spent,
        "result": job.result,
        "error": job.error,
        "retry_of": str(job.retry_of_id) if job.retry_of_id is not None else None,
        "files": [job_file_output(job_file) for job_file in job.listed_files],
        "created_at": datetime_output(job.created_at),
        "queued_at": datetime_output(job.queued_at),
        "started_at": datetime_output(job.started_at),
        "completed_at": datetime_output(job.completed_at),
        "updated_at": datetime_output(job.updated_at),
    }


STATS_STATUSES = ["pending", "processing", "completed", "failed"]


MAX_VAULT_ITEMS = 1000


class VaultItemInputSerializer(serializers.Serializer):
    """An item a job produced, stored in the user's vault once per (job, kind, external_id)."""

    kind = serializers.ChoiceField(choices=[(k, k) for k in VAULT_KINDS])
    external_id = serializers.CharField(max_length=128)
    name = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    data = serializers.DictField(required=False, default=dict)


class StatsPatchInputSerializer(serializers.Serializer):
    job_id = serializers.CharField(
        max_length=EXTERNAL_ID_MAX,
        validators=[validate_external_id],
        help_text="The external (worker's) job id, or the UUID of one of your jobs (that job is updated).",
    )
    requested_count = serializers.IntegerField(min_value=0, max_value=1_000_000)
    # Absent counts stay absent (None): a `completed` report without counts means every
    # requested unit succeeded.
    successful_count = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False)
    failed_count = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False)
    status = serializers.ChoiceField(choices=STATS_STATUSES)
    kind = serializers.CharField(max_length=64, default="account_batch")
    user_id = serializers.UUIDField(required=False)
    vault_items = VaultItemInputSerializer(many=True, required=False, max_length=MAX_VAULT_ITEMS)

    def validate(self, attrs):
        if attrs.get("successful_count", 0) + attrs.get("failed_count", 0) > attrs["requested_count"]:
            raise serializers.ValidationError(
                {"failed_count": ["successful_count + failed_count cannot exceed requested_count."]}
            )
        return attrs


class StatsPatchOutputSerializer(serializers.Serializer):
    job_id = serializers.CharField(help_text="The job_id the report was sent with.")
    requested_count = serializers.IntegerField()
    successful_count = serializers.IntegerField()
    failed_count = serializers.IntegerField()
    status = serializers.CharField()


MAX_STATS_DAYS = 3660
MAX_DAILY_DAYS = 366


class DateRangeSerializer(serializers.Serializer):
    """`?from=YYYY-MM-DD&to=YYYY-MM-DD`, inclusive, UTC; both default to the last 30 days."""

    max_days = MAX_STATS_DAYS

    def to_internal_value(self, data):
        values = {"from": data.get("from"), "to": data.get("to")}
        errors, parsed = {}, {}
        for key, raw in values.items():
            if raw in (None, ""):
                continue
            try:
                parsed[key] = date.fromisoformat(str(raw)[:10]) if len(str(raw)) == 10 else None
            except ValueError:
                parsed[key] = None
            if parsed[key] is None:
                errors[key] = ["Use the format YYYY-MM-DD."]
        if errors:
            raise serializers.ValidationError(errors)
        today = timezone.now().date()
        date_to = parsed.get("to") or today
        # Default: the 30 days ending at `to`, clamped at the first representable date.
        date_from = parsed.get("from") or max(
            date.min, date_to - timedelta(days=min(29, (date_to - date.min).days))
        )
        if date_from > date_to:
            raise serializers.ValidationError({"from": ["`from` must not be after `to`."]})
        if (date_to - date_from).days + 1 > self.max_days:
            raise serializers.ValidationError({"from": [f"The range may span at most {self.max_days} days."]})
        return {"date_from": date_from, "date_to": date_to}


class DailyRangeSerializer(DateRangeSerializer):
    max_days = MAX_DAILY_DAYS


class StatsOutputSerializer(serializers.Serializer):
    jobs = serializers.IntegerField()
    requested = serializers.IntegerField()
    successful = serializers.IntegerField()
    failed = serializers.IntegerField()
    success_rate = serializers.FloatField()
    credits_spent = serializers.IntegerField()
    vault_items = serializers.IntegerField()


class UserStatsOutputSerializer(StatsOutputSerializer):
    """GET /api/stats also carries the user's totals (completed_jobs, …)."""

    completed_jobs = serializers.IntegerField()
    failed_jobs = serializers.IntegerField()
    last_login = serializers.DateTimeField(allow_null=True)


class DailyStatOutputSerializer(StatsOutputSerializer):
    date = serializers.DateField()


class QueueStatusOutputSerializer(serializers.Serializer):
    counts = serializers.DictField(child=serializers.IntegerField())
    average_wait_seconds = serializers.FloatField(allow_null=True)
    oldest_queued_seconds = serializers.FloatField(allow_null=True)


class WebhookOutputSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=["applied", "duplicate"])
    job_id = serializers.CharField()
    status = serializers.CharField(allow_null=True)


class UsageMetricsSerializer(serializers.Serializer):
    endpoint = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)
    units = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False, default=0)
    cost = serializers.DecimalField(max_digits=12, decimal_places=4, min_value=0, required=False, default=0)
    duration_ms = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False, default=0)
    status_code = serializers.IntegerField(
        min_value=100, max_value=599, required=False, allow_null=True, default=None
    )


class JobWebhookInputSerializer(serializers.Serializer):
    event_id = serializers.CharField(max_length=128)
    job_id = serializers.CharField(max_length=EXTERNAL_ID_MAX)
    status = serializers.ChoiceField(
        choices=["processing", "completed", "failed"], required=False, allow_null=True, default=None
    )
    progress = serializers.IntegerField(
        min_value=0, max_value=100, required=False, allow_null=True, default=None
    )
    output = serializers.DictField(required=False, allow_null=True, default=None)
    error = serializers.CharField(
        max_length=10_000, required=False, allow_blank=True, allow_null=True, default=None
    )
    successful_count = serializers.IntegerField(
        min_value=0, max_value=1_000_000, required=False, allow_null=True, default=None
    )
    failed_count = serializers.IntegerField(
        min_value=0, max_value=1_000_000, required=False, allow_null=True, default=None
    )
    metrics = UsageMetricsSerializer(required=False, allow_null=True, default=None)
