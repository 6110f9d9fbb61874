"""Replicate's webhooks (`POST /api/webhooks/jobs/replicate`), a handler of the shared
signed-webhook receiver (credits.webhook_receiver): each delivery logged once, each event applied
once. Verified with the SDK's own helper (Replicate's scheme: `webhook-id`, `webhook-timestamp`,
`webhook-signature`); a prediction's states walk its job through `job_report`:

- `starting`: a heartbeat (the job is `preparing` since the prediction was started);
- `processing` → processing, with the progress its logs' progress bar shows;
- `succeeded` → finalizing, and the output download task is sent after commit
  (jobs.replicate.replicate_outputs_fetch completes the job);
- `failed` | `canceled` → failed, refunded, in the error log.

Each prediction's webhook URL names its job and the attempt that started it
(`?job=<uuid>&attempt=<n>`, jobs.replicate.replicate_webhook_url; the signature covers the
body, so only Replicate's deliveries get that far). A prediction no job has stored is then
matched by that name:
- the named attempt is still running and follows no prediction (the start crashed, or its
  answer was lost, after Replicate created it): the job takes the prediction as its own and the
  delivery applies;
- the attempt has ended (a retry follows another prediction, the job finished or was
  cancelled): the prediction is an orphan, cancelled at Replicate after commit
  (`jobs.replicate_orphan_cancel`, it would be billed to its end), answered 200 `ignored`.
A prediction neither stored nor named (yet: the webhook can overtake the 201 of its creation)
is 404, which Replicate retries. Apart from jobs.replicate (starting predictions, downloading
outputs) so that the API imports neither the engine nor the tasks.
"""

import dataclasses
import hashlib
import logging
import re
import uuid
from functools import partial

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
from jobs.states import RUNNING, TERMINAL, JobStatus
from jobs.wakeup import enqueue_replicate_orphan_cancel

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


@dataclasses.dataclass(frozen=True)
class Delivery:
    """A parsed delivery: the prediction, and the job and attempt its webhook URL names (None
    when the URL names none, or not as jobs.replicate writes it)."""

    prediction: dict
    job_id: uuid.UUID | None = None
    attempt: int | None = None


def _named(query) -> tuple[uuid.UUID | None, int | None]:
    """The job and attempt a webhook URL's query names, or (None, None)."""
    try:
        job_id, attempt = uuid.UUID(str(query.get("job"))), int(str(query.get("attempt")))
    except (AttributeError, TypeError, ValueError):
        return None, None
    return (job_id, attempt) if 0 < attempt < 2**31 else (None, None)


def replicate_handler(query=None) -> WebhookHandler:
    """The receiver's handler for one delivery to a URL with this query (`job`, `attempt`)."""
    job_id, attempt = _named(query or {})
    return dataclasses.replace(REPLICATE, parse=partial(_parse, job_id=job_id, attempt=attempt))


def _parse(provider: str, payload, body: bytes, *, job_id=None, attempt=None) -> Event:
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
    return Event(
        event_id=event_id,
        type=f"prediction.{status}",
        data=Delivery(prediction=payload, job_id=job_id, attempt=attempt),
    )


_PERCENT = re.compile(r"(\d{1,3})%\|")


def prediction_progress(logs) -> int | None:
    """The last percentage a progress bar (tqdm: " 42%|####") printed in the logs, below 100."""
    if not isinstance(logs, str):
        return None
    found = _PERCENT.findall(logs[-10_000:])
    return min(99, int(found[-1])) if found else None


def _prediction_job(delivery: Delivery):
    """The id of the job following the delivery's prediction, taking it for the attempt its URL
    names when that attempt is running and follows none; None for an orphan (cancelled after
    commit). 404 when no job has or names it."""
    prediction_id = delivery.prediction["id"]
    jobs = Job.objects.filter(kind__code__in=sorted(settings.REPLICATE_KIND_VERSIONS))
    job_id = jobs.filter(remote_id=prediction_id).values_list("pk", flat=True).first()
    if job_id is not None:
        return job_id
    named = None
    if delivery.job_id is not None:
        named = jobs.select_for_update(of=("self",)).filter(pk=delivery.job_id).first()
    if named is None:
        raise NotFound("No job has this prediction.")
    if named.remote_id == prediction_id:  # taken by a concurrent delivery, now committed
        return named.pk
    if named.attempts == delivery.attempt and named.status in RUNNING and not named.remote_id:
        Job.objects.filter(pk=named.pk).update(remote_id=prediction_id)
        return named.pk
    if delivery.prediction["status"] not in FINISHED_PREDICTION:
        enqueue_replicate_orphan_cancel(job_id=named.pk, prediction_id=prediction_id)
    return None


def _apply(provider: str, event: Event) -> tuple[str, dict, dict]:
    delivery = event.data
    prediction = delivery.prediction
    job_id = _prediction_job(delivery)
    if job_id is None:
        body = {"outcome": "ignored", "job_uuid": str(delivery.job_id), "status": None}
        return WebhookLog.Outcome.IGNORED, body, {"job_id": delivery.job_id}
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
