"""The jobs handler of the shared signed-webhook receiver (`credits.webhook_receiver`): the
callbacks of external workers.

A provider P is configured in settings.JOB_WEBHOOK_PROVIDERS (secret, kinds). It may drive only
the job kinds listed for it, or, with no list, every kind whose outcome an external worker reports
(`JobKind.reported_by == worker`); another kind's job answers 404 like an unknown one.

Naming the job: external ids are unique per user, so a report names its job by `job_uuid` (the
job's id, unambiguous) or by `job_id` (the external id), which is accepted only when exactly one
job within the provider's kinds has it (several → 409 `ambiguous_job_id`). `job_uuid` wins when
both are given (and then `job_id`, if present, must match).
"""

from django.conf import settings
from rest_framework import serializers

from config.exceptions import Conflict, NotFound
from credits.models import WebhookLog
from credits.webhook_receiver import Event, EventError, WebhookHandler, webhook_receive
from jobs.models import Job, JobKind
from jobs.replicate_webhooks import PROVIDER, replicate_handler
from jobs.serializers import JobWebhookInputSerializer
from jobs.services import Reporter, job_report


class JobWebhookEventSerializer(JobWebhookInputSerializer):
    job_uuid = serializers.UUIDField(required=False, allow_null=True, default=None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["job_id"].required = False
        self.fields["job_id"].default = ""

    def validate(self, attrs):
        if not attrs.get("job_uuid") and not attrs.get("job_id"):
            raise serializers.ValidationError({"job_id": ["Name the job by job_uuid or job_id."]})
        return attrs


def _config(provider: str) -> dict | None:
    return settings.JOB_WEBHOOK_PROVIDERS.get(provider)


def _secret(provider: str) -> str | None:
    config = _config(provider)
    return None if config is None else config.get("secret", "")


def provider_kinds(provider: str):
    """The JobKind queryset `provider` may drive (its JOB_WEBHOOK_KINDS_<P> list, or by default
    every kind an external worker reports)."""
    codes = (_config(provider) or {}).get("kinds") or []
    if codes:
        return JobKind.objects.filter(code__in=codes)
    return JobKind.objects.filter(reported_by=JobKind.ReportedBy.WORKER)


def _parse(provider: str, payload, body: bytes) -> Event:
    if not isinstance(payload, dict):
        raise EventError(
            "validation_error", "Invalid input.", fields={"non_field_errors": ["Expected a JSON object."]}
        )
    serializer = JobWebhookEventSerializer(data=payload)
    if not serializer.is_valid():
        fields = {
            k: [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in serializer.errors.items()
        }
        raise EventError("validation_error", "Invalid input.", fields=fields)
    data = dict(serializer.validated_data)
    data["payload"] = payload
    return Event(event_id=data["event_id"], type=data.get("status") or "report", data=data)


def _job_id(provider: str, data: dict):
    jobs = Job.objects.filter(kind__in=provider_kinds(provider))
    if data.get("job_uuid"):
        jobs = jobs.filter(pk=data["job_uuid"])
        if data.get("job_id"):
            jobs = jobs.filter(external_id=data["job_id"])
    else:
        jobs = jobs.filter(external_id=data["job_id"])
    ids = list(jobs.values_list("pk", flat=True)[:2])
    if len(ids) > 1:
        raise Conflict(
            "Several jobs have this external id; name the job by job_uuid.", code="ambiguous_job_id"
        )
    if not ids:
        raise NotFound("Job not found.")
    return ids[0]


def _apply(provider: str, event: Event) -> tuple[str, dict, dict]:
    data = event.data
    job_id = _job_id(provider, data)
    output = dict(data["output"]) if isinstance(data.get("output"), dict) else None
    artifacts = output.pop("artifacts", None) if output else None
    job = job_report(
        job_id=job_id,
        reporter=Reporter.WEBHOOK,
        status=data.get("status"),
        successful_count=data.get("successful_count"),
        failed_count=data.get("failed_count"),
        progress=data.get("progress"),
        output=output,
        error=data.get("error"),
        artifacts=artifacts if isinstance(artifacts, list) else None,
        metrics=data.get("metrics"),
        provider=provider,
    )
    body = {
        "outcome": "applied",
        "job_id": job.external_id or str(job.pk),
        "job_uuid": str(job.pk),
        "status": job.status,
    }
    return WebhookLog.Outcome.PROCESSED, body, {"job_id": job.pk}


def _duplicate(event: Event) -> dict:
    return {
        "outcome": "duplicate",
        "event_id": event.event_id,
        "job_id": event.data.get("job_id") or None,
        "status": None,
    }


JOBS = WebhookHandler(source="jobs", secret=_secret, parse=_parse, apply=_apply, duplicate=_duplicate)


def job_webhook_receive(
    *, provider: str, body: bytes, headers: dict, body_too_large: bool = False, query=None
):
    """One delivery to `POST /api/webhooks/jobs/<provider>`: the shared receiver's guarantees
    (every delivery logged in WebhookLog, source "jobs"; each event applied once, with its log
    row), then job_report (reporter `webhook`). Refusals: unknown provider 404; bad signature
    400/401; invalid JSON or report 400; a job that is unknown or of a kind the provider may not
    drive 404; an ambiguous external id 409; job_report's 403s. Provider `replicate` is
    Replicate's own payload and signature scheme (jobs.replicate_webhooks; `query`: the URL's
    query, which names the prediction's job)."""
    provider = provider.lower() if isinstance(provider, str) else provider
    return webhook_receive(
        handler=replicate_handler(query) if provider == PROVIDER else JOBS,
        provider=provider,
        body=body,
        headers=headers,
        body_too_large=body_too_large,
    )
