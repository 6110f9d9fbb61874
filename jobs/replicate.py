"""Jobs run on Replicate, through the official `replicate` SDK.

A job kind is mapped to a Replicate model version in settings.REPLICATE_KIND_VERSIONS (an
`external` kind reported by a `worker`; the pull protocol never hands it to a worker). Its life:

1. `job_create` queues and charges it, then announces it after commit (`jobs.replicate_start`);
2. `replicate_prediction_start` claims it (`queued|retrying → preparing`, attempts + 1, through
   `job_transition`), commits, then creates the prediction (input: the job's params) with the
   webhook <PUBLIC_BASE_URL>/api/webhooks/jobs/replicate?job=<id>&attempt=<n>, outside any
   transaction; the prediction id is stored as the job's `remote_id` (a prediction whose id was
   never stored is matched by the job and attempt its URL names: jobs.replicate_webhooks). A
   transient failure (network, 429, 5xx) is a failed attempt (`job_attempt_failed`: `retrying`
   with backoff, started again when due, then `failed` and refunded); any other refusal (401,
   422…) fails the job for good, refunded;
3. Replicate's webhooks (jobs.replicate_webhooks, a handler of the shared signed-webhook
   receiver: each delivery logged once, each event applied once) walk the job through `job_report`:
   `starting` a heartbeat, `processing` → processing (progress read from the logs),
   `succeeded` → finalizing, `failed|canceled` → failed and refunded. A prediction no job has
   or names is 404 (Replicate retries, which covers a webhook that arrives before the id is
   stored); one whose attempt has ended is cancelled (`replicate_orphan_cancel`);
4. `replicate_outputs_fetch` (a Celery task, after the `succeeded` webhook committed) downloads
   the outputs with httpx (bounded size and time) into storage, outside any transaction, then
   records them and completes the job under its row lock.

Nothing here writes a status or money by itself: every move is `job_transition` (through
`job_report` or the engine's `job_attempt_failed`).
"""

import logging
import posixpath
from urllib.parse import urlencode, urlsplit

import httpx
import replicate
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from replicate.exceptions import ReplicateError, ReplicateException

from config.exceptions import ApplicationError
from config.outside_calls import outside_call
from jobs import file_services
from jobs.engine import job_attempt_failed
from jobs.files import RULES, check_upload
from jobs.models import Job
from jobs.processors import PendingOutput
from jobs.replicate_webhooks import PROVIDER
from jobs.services import (
    Reporter,
    job_lock,
    job_outputs_discard,
    job_outputs_record,
    job_outputs_write,
    job_report,
    job_transition_in_atomic,
)
from jobs.states import CLAIMABLE, JobStatus
from jobs.wakeup import enqueue_replicate_start

logger = logging.getLogger(__name__)
S = JobStatus
# The prediction events Replicate sends to the webhook ("logs" would be one delivery per line).
WEBHOOK_EVENTS = ["start", "output", "completed"]
MAX_OUTPUTS = 10
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})


def replicate_kind_version(code: str) -> str | None:
    """The Replicate model version a job kind is mapped to, or None."""
    return settings.REPLICATE_KIND_VERSIONS.get(code) or None


class BoundedTransport(httpx.HTTPTransport):
    """An httpx transport that bounds every request by `timeout` where the request itself sets
    no limit. The SDK's `predictions.create` (replicate 1.0.7) sends its request with
    `timeout=None` unless it is asked to wait for the output, which in httpx means no limit at
    all, whatever the client's own timeout: a Replicate that never answers would hold the task
    until Celery's hard limit. Through httpx's documented `timeout` request extension."""

    def __init__(self, *, timeout: httpx.Timeout, **kwargs):
        super().__init__(**kwargs)
        self.limits = timeout.as_dict()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        given = request.extensions.get("timeout") or {}
        request.extensions["timeout"] = {
            name: given.get(name) if given.get(name) is not None else default
            for name, default in self.limits.items()
        }
        return super().handle_request(request)


def replicate_client() -> replicate.Client:
    timeout = httpx.Timeout(settings.REPLICATE_TIMEOUT_SECONDS)
    return replicate.Client(
        api_token=settings.REPLICATE_API_TOKEN,
        base_url=settings.REPLICATE_API_BASE,
        timeout=timeout,
        transport=BoundedTransport(timeout=timeout),
    )


def replicate_webhook_url(*, job_id, attempt: int) -> str:
    """Where Replicate sends the prediction's webhooks: the receiver's URL naming the job and the
    attempt that started it, so that a delivery finds its job even when the prediction's id was
    never stored (jobs.replicate_webhooks)."""
    path = reverse("job-webhook", kwargs={"provider": PROVIDER})
    return f"{settings.PUBLIC_BASE_URL}{path}?{urlencode({'job': str(job_id), 'attempt': attempt})}"


def _transient(exc: Exception) -> bool:
    if isinstance(exc, ReplicateError):
        status = exc.status or 0
        return status in TRANSIENT_STATUSES or status >= 500
    return isinstance(exc, httpx.TransportError)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ReplicateError):
        detail = f"{exc.title or ''} {exc.detail or ''}".strip()
        return f"Replicate refused the prediction ({exc.status}): {detail}"
    return f"Could not reach Replicate: {type(exc).__name__}: {exc}"


def replicate_prediction_start(*, job_id, now=None) -> str | None:
    """Start the Replicate prediction of a queued (or due retrying) job of a mapped kind.

    Claims the job first (`→ preparing`, attempts + 1, through job_transition, in its own
    transaction), so a repeated task finds it claimed and does nothing; then calls the SDK
    outside any transaction (one usage row, `outside_call`). Returns the prediction id, or None
    when there was nothing to start or the call failed (handled: see the module docstring)."""
    now = now or timezone.now()
    with transaction.atomic():
        job = job_lock(job_id=job_id)
        version = replicate_kind_version(job.kind.code)
        due = job.next_attempt_at is None or job.next_attempt_at <= now
        if version is None or job.status not in CLAIMABLE or not due:
            return None
        job = job_transition_in_atomic(
            job=job,
            to=S.PREPARING,
            locked=True,
            now=now,
            fields={
                "attempts": job.attempts + 1,
                "heartbeat_at": now,
                "attempt_started_at": now,
                "next_attempt_at": None,
            },
        )
    attempt = job.attempts
    try:
        with outside_call(PROVIDER, "predictions.create", job_id=job.pk) as call:
            try:
                prediction = replicate_client().predictions.create(
                    version=version,
                    input=job.params if isinstance(job.params, dict) else {},
                    webhook=replicate_webhook_url(job_id=job.pk, attempt=attempt),
                    webhook_events_filter=WEBHOOK_EVENTS,
                )
            except ReplicateError as exc:
                call.status_code = exc.status  # the SDK's problem-details status
                raise
            call.status_code = 201
    except (ReplicateException, httpx.HTTPError) as exc:
        _start_failed(job_id=job.pk, attempt=attempt, exc=exc)
        return None
    with transaction.atomic():
        Job.objects.filter(pk=job.pk, attempts=attempt).update(remote_id=str(prediction.id)[:128])
    return prediction.id


@transaction.atomic
def _start_failed(*, job_id, attempt: int, exc: Exception) -> None:
    transient = _transient(exc)
    status = job_attempt_failed(job_id=job_id, attempt=attempt, error=_describe(exc), permanent=not transient)
    if status == S.RETRYING:
        next_at = Job.objects.filter(pk=job_id).values_list("next_attempt_at", flat=True).first()
        delay = max(0.0, (next_at - timezone.now()).total_seconds()) if next_at else 0.0
        enqueue_replicate_start(job_id=job_id, countdown=delay)


def replicate_prediction_cancel(*, job_id) -> bool:
    """Cancel at Replicate the prediction of a job cancelled here (it would run and be billed
    to its end otherwise). Returns whether Replicate accepted (see `_cancel_at_replicate`)."""
    job = Job.objects.select_related("kind").filter(pk=job_id, status=S.CANCELLED).first()
    if job is None or not job.remote_id or replicate_kind_version(job.kind.code) is None:
        return False
    return _cancel_at_replicate(job_id=job.pk, prediction_id=job.remote_id)


def replicate_orphan_cancel(*, job_id, prediction_id: str) -> bool:
    """Cancel at Replicate a prediction its job does not follow (jobs.replicate_webhooks: its
    webhook named an attempt that has ended, or the job follows another prediction), unless the
    job has since taken it as its own. Returns whether Replicate accepted."""
    if Job.objects.filter(pk=job_id, remote_id=prediction_id).exists():
        return False
    return _cancel_at_replicate(job_id=job_id, prediction_id=prediction_id)


def _cancel_at_replicate(*, job_id, prediction_id: str) -> bool:
    """`POST /v1/predictions/<id>/cancel` through the SDK, outside any transaction, one usage
    row; a refusal or a network error is logged and not retried (the prediction then ends by
    itself; its webhooks no longer move the job)."""
    try:
        with outside_call(PROVIDER, "predictions.cancel", job_id=job_id) as call:
            try:
                replicate_client().predictions.cancel(prediction_id)
            except ReplicateError as exc:
                call.status_code = exc.status
                raise
            call.status_code = 200
    except (ReplicateException, httpx.HTTPError) as exc:
        logger.warning(
            "Could not cancel the Replicate prediction %s of job %s: %s",
            prediction_id,
            job_id,
            _describe(exc),
        )
        return False
    return True


def replicate_due_announce(*, now=None, limit: int = 100) -> int:
    """Announce again the jobs of mapped kinds waiting to be started (their message may have
    been lost): queued, or retrying and due. Starting is idempotent. Returns how many."""
    now = now or timezone.now()
    codes = sorted(settings.REPLICATE_KIND_VERSIONS)
    if not codes:
        return 0
    ids = list(
        Job.objects.filter(status__in=sorted(CLAIMABLE), runs_on_engine=False, kind__code__in=codes)
        .exclude(next_attempt_at__gt=now)
        .values_list("pk", flat=True)[:limit]
    )
    with transaction.atomic():
        for job_id in ids:
            enqueue_replicate_start(job_id=job_id)
    return len(ids)


# --- Outputs --------------------------------------------------------------------------------------


class OutputUnavailable(Exception):
    """An output could not be downloaded; `transient` when trying again may help."""

    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient


def output_urls(output) -> list[str]:
    """The http(s) URLs in a prediction's `output` (a string, or a list of them)."""
    items = output if isinstance(output, list) else [output]
    return [u for u in items if isinstance(u, str) and urlsplit(u).scheme in ("http", "https")][:MAX_OUTPUTS]


def _download(url: str, *, job_id) -> tuple[bytes, str]:
    """The bytes at `url` (at most REPLICATE_OUTPUT_MAX_BYTES, within REPLICATE_TIMEOUT_SECONDS
    per step) and the file's extension, as one usage row."""
    limit = settings.REPLICATE_OUTPUT_MAX_BYTES
    name = posixpath.basename(urlsplit(url).path)
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in RULES:
        raise OutputUnavailable(f"Unsupported output type: {name or url}", transient=False)
    try:
        with (
            outside_call(PROVIDER, "output.download", job_id=job_id) as call,
            httpx.Client(timeout=settings.REPLICATE_TIMEOUT_SECONDS, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            call.status_code = response.status_code
            if response.status_code >= 400:
                call.succeeded = False
                transient = response.status_code in TRANSIENT_STATUSES or response.status_code >= 500
                message = f"Output download answered {response.status_code}."
                raise OutputUnavailable(message, transient=transient)
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise OutputUnavailable(f"The output is larger than {limit} bytes.", transient=False)
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > limit:
                    raise OutputUnavailable(f"The output is larger than {limit} bytes.", transient=False)
    except httpx.HTTPError as exc:
        raise OutputUnavailable(f"Output download failed: {type(exc).__name__}", transient=True) from None
    return bytes(data), ext


def replicate_outputs_fetch(*, job_id) -> str:
    """Copy a finalizing Replicate job's outputs into its files, then complete it.

    Downloads and writes to storage before and outside the transaction that records the files
    (no row lock is held while the network or storage works); that transaction locks the job
    row, re-checks it is still finalizing in the same attempt, reserves the owner's storage quota
    (job → user lock order), records the files and completes the job through `job_report`.
    Running it twice is harmless. Raises OutputUnavailable for a transient download failure (the
    task retries); a permanent one (4xx, too large, not the declared type, over quota) fails the
    job, refunded. Returns what it did."""
    job = Job.objects.select_related("kind").filter(pk=job_id).first()
    if job is None or job.status != S.FINALIZING:
        return "skipped"
    attempt = job.attempts
    info = job.result.get("replicate") if isinstance(job.result, dict) else None
    pending = []
    try:
        for index, url in enumerate(output_urls((info or {}).get("output"))):
            data, ext = _download(url, job_id=job.pk)
            name = f"output-{index + 1}.{ext}"
            family_role = "thumbnail" if RULES[ext].family == "image" else "output"
            check_upload(ContentFile(data, name=name), role=family_role, field="output")
            pending.append(PendingOutput(data=data, ext=ext, role="output", name=name))
    except OutputUnavailable as exc:
        if exc.transient:
            raise
        return replicate_outputs_failed(job_id=job.pk, attempt=attempt, error=str(exc))
    except ApplicationError as exc:
        detail = "; ".join(m for ms in (exc.fields or {}).values() for m in ms) or exc.message
        return replicate_outputs_failed(job_id=job.pk, attempt=attempt, error=f"Refused output: {detail}")
    files = job_outputs_write(job=job, outputs=pending)
    try:
        with transaction.atomic():
            locked = job_lock(job_id=job.pk)
            if locked.status != S.FINALIZING or locked.attempts != attempt:
                job_outputs_discard(files=files)
                return "skipped"
            file_services.storage_quota_reserve(user_id=locked.user_id, size=sum(f.size for f in files))
            job_outputs_record(job=locked, files=files, artifacts=[])
            job_report(job_id=locked.pk, reporter=Reporter.WEBHOOK, status=S.COMPLETED)
    except ApplicationError as exc:
        job_outputs_discard(files=files)
        return replicate_outputs_failed(job_id=job.pk, attempt=attempt, error=exc.message)
    except BaseException:
        job_outputs_discard(files=files)
        raise
    return "completed"


@transaction.atomic
def replicate_outputs_failed(*, job_id, attempt: int, error: str) -> str:
    """The outputs of a succeeded prediction cannot be copied: the job fails for good, refunded
    (`job_attempt_failed`, which also puts it in the error log)."""
    error = f"Replicate output: {error}"
    status = job_attempt_failed(job_id=job_id, attempt=attempt, error=error, permanent=True)
    return status or "skipped"


def download_backoff(retries: int) -> float:
    return float(settings.REPLICATE_DOWNLOAD_BACKOFF_SECONDS) * (2**retries)


def replicate_outputs_given_up(*, job_id, error: str) -> str:
    """The downloads kept failing transiently past their retries: the job fails, refunded."""
    attempt = Job.objects.filter(pk=job_id, status=S.FINALIZING).values_list("attempts", flat=True).first()
    if attempt is None:
        return "skipped"
    return replicate_outputs_failed(job_id=job_id, attempt=attempt, error=error)
