"""Replicate's webhooks (`POST /api/webhooks/jobs/replicate`), a handler of the shared
signed-webhook receiver (credits.webhook_receiver): each delivery logged once, each event applied
once. Verified with the SDK's own helper (Replicate's scheme: `webhook-id`, `webhook-timestamp`,
`webhook-signature`); a prediction's states walk its job through `job_report`:

- `starting`: a heartbeat (the job is `preparing` since the prediction was started);
- `processing` → processing, with the progress its logs' progress bar shows;
- `succeeded` → finalizing, and the output download task is sent after commit
  (jobs.replicate.replicate_outputs_fetch completes the job);
- `failed` | `canceled` → failed, refunded, in the error log.

A prediction no job has (yet: the webhook can overtake the 201 of its creation) is 404, which
Replicate retries. Apart from jobs.replicate (starting predictions, downloading outputs) so that
the API imports neither the engine nor the tasks.
"""

import hashlib
import logging
import re

from celery import current_app
from django.conf import settings
from django.db import transaction
from replicate.webhook import (
    InvalidTimestampError,
    MissingWebhookHeaderError,
    Webhooks,
    WebhookSigningSecret,
    WebhookValidationError,
)

from config.exceptions import NotFound
from config.failures import failure_report
from config.signing import SignatureError
from credits.models import WebhookLog
from credits.webhook_receiver import Event, EventError, WebhookHandler
from jobs.models import Job
from jobs.services import Reporter, job_lock, job_report
from jobs.states import TERMINAL, JobStatus

logger = logging.getLogger(__name__)
S = JobStatus
PROVIDER = "replicate"
PREDICTION_STATUSES = ("starting", "processing", "succeeded", "failed", "canceled")
FINISHED_PREDICTION = ("succeeded", "failed", "canceled")
FETCH_TASK = "jobs.replicate_outputs_fetch"


def _secret(provider: str) -> str | None:
    return settings.REPLICATE_WEBHOOK_SECRET if provider == PROVIDER else None


def _verify(provider: str, headers: dict, body: bytes, now: int | None) -> None:
    """Replicate's signature scheme (Standard Webhooks), checked by the SDK's own helper:
    HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>" with the secret after "whsec_",
    `webhook-signature` "v1,<base64>" (several may be given), the timestamp within
    WEBHOOK_TOLERANCE_SECONDS of now."""
    secret = _secret(provider)
    if not secret:
        raise SignatureError("webhook_not_configured", "No secret is configured for this provider.")
    try:
        text = body.decode("utf-8")
        Webhooks.validate(
            headers=headers,
            body=text,
            secret=WebhookSigningSecret(key=secret),
            tolerance=settings.WEBHOOK_TOLERANCE_SECONDS,
        )
    except MissingWebhookHeaderError as exc:
        raise SignatureError("missing_signature", f"{exc}.") from None
    except InvalidTimestampError:
        raise SignatureError("stale_signature", "The signature timestamp is outside the tolerance.") from None
    except (WebhookValidationError, ValueError, TypeError):
        # A wrong signature, or a header that is not one (base64, timestamp): refused alike.
        raise SignatureError("invalid_signature", "The signature does not match.") from None


def _parse(provider: str, payload, body: bytes) -> Event:
    """A prediction object: `id` and `status` are required. The event is (prediction, status)
    for a finished prediction (one effect, whatever is redelivered); a running one's deliveries
    differ by body (new output, logs), so their body's digest is part of the event id."""
    if not isinstance(payload, dict):
        raise EventError(
            "validation_error", "Invalid input.", fields={"non_field_errors": ["Expected a prediction."]}
        )
    fields = {}
    prediction_id, status = payload.get("id"), payload.get("status")
    if not isinstance(prediction_id, str) or not 0 < len(prediction_id) <= 128:
        fields["id"] = ["A prediction id is required."]
    if status not in PREDICTION_STATUSES:
        fields["status"] = [f"Must be one of {', '.join(PREDICTION_STATUSES)}."]
    if fields:
        raise EventError("validation_error", "Invalid input.", fields=fields)
    event_id = f"{prediction_id}:{status}"
    if status not in FINISHED_PREDICTION:
        event_id += ":" + hashlib.sha256(body).hexdigest()[:16]
    return Event(event_id=event_id, type=f"prediction.{status}", data=payload)


_PERCENT = re.compile(r"(\d{1,3})%\|")


def prediction_progress(logs) -> int | None:
    """The last percentage a progress bar (tqdm: " 42%|####") printed in the logs, below 100."""
    if not isinstance(logs, str):
        return None
    found = _PERCENT.findall(logs[-10_000:])
    return min(99, int(found[-1])) if found else None


def _apply(provider: str, event: Event) -> tuple[str, dict, dict]:
    prediction = event.data
    codes = sorted(settings.REPLICATE_KIND_VERSIONS)
    jobs = Job.objects.filter(remote_id=prediction["id"], kind__code__in=codes)
    job_id = jobs.values_list("pk", flat=True).first()
    if job_id is None:
        raise NotFound("No job has this prediction.")
    status = prediction["status"]
    summary = {
        "prediction_id": prediction["id"],
        "status": status,
        "output": prediction.get("output"),
        "metrics": prediction.get("metrics") if isinstance(prediction.get("metrics"), dict) else {},
    }
    before = job_lock(job_id=job_id).status  # under the row lock job_report then holds
    if status == "starting":
        job = job_report(job_id=job_id, reporter=Reporter.WEBHOOK, output={"replicate": summary})
    elif status == "processing":
        job = job_report(
            job_id=job_id,
            reporter=Reporter.WEBHOOK,
            status=S.PROCESSING,
            progress=prediction_progress(prediction.get("logs")),
            output={"replicate": summary},
        )
    elif status == "succeeded":
        job = job_report(
            job_id=job_id, reporter=Reporter.WEBHOOK, status=S.FINALIZING, output={"replicate": summary}
        )
        if job.status == S.FINALIZING and before != S.FINALIZING:
            transaction.on_commit(lambda: _send_fetch(job_id))
    else:
        error = prediction.get("error") or f"The prediction was {status}."
        job = job_report(
            job_id=job_id,
            reporter=Reporter.WEBHOOK,
            status=S.FAILED,
            error=f"Replicate: {error}"[:10_000],
            output={"replicate": summary},
        )
        if job.status == S.FAILED and before not in TERMINAL:
            failure_report(
                category="job",
                operation=job.kind.code,
                step=f"attempt {job.attempts}",
                error_code=f"prediction_{status}",
                message=f"The Replicate prediction was {status}.",
                user_id=job.user_id,
                job_id=job.pk,
                context={"prediction_id": prediction["id"], "error": str(error)[:2000]},
            )
    body = {"outcome": "applied", "job_uuid": str(job.pk), "status": job.status}
    return WebhookLog.Outcome.PROCESSED, body, {"job_id": job.pk}


def _duplicate(event: Event) -> dict:
    return {"outcome": "duplicate", "event_id": event.event_id, "status": None}


def _send_fetch(job_id) -> None:
    try:
        current_app.send_task(FETCH_TASK, args=[str(job_id)], queue="default")
    except Exception:  # the job stays finalizing; the silent-job rescue fails and refunds it
        logger.exception("Could not enqueue the output download of job %s.", job_id)


REPLICATE = WebhookHandler(
    source="jobs", secret=_secret, parse=_parse, apply=_apply, duplicate=_duplicate, verify=_verify
)
