"""Prometheus metrics the processes count themselves (prometheus-client).

Every metric a process increments is declared here, once, so the names stay one list
(docs/OPERATIONS.md, "Metrics", has what each means). Figures read from the database at scrape
time (queue backlog, schedules, backups, the ledger audit) are not counted here: the `/metrics`
view computes them (console/metrics.py).

Multiprocess mode. gunicorn runs several worker processes and Celery several pool processes, and
each counts in its own memory; with PROMETHEUS_MULTIPROC_DIR set in the environment of every
process (before prometheus-client is imported: the process's environment or `.env`), each
process writes its values to files in that folder instead, and the view sums them, so a total is
the total of every process on the machine, dead ones included (gunicorn's master marks a worker
dead when it exits: config/gunicorn.py). Without it (runserver, tests) values live in the
process and the view reads them from there.

For other code: `channel_delivery_record(channel=..., outcome=...)` counts one delivery of a
chat message to a channel (LINE, Messenger, …), `email_record(outcome=...)` one email. Labels are
bounded on purpose (a route pattern, not a path; a provider the app knows, not whatever a caller
puts in a URL), since each label value is a series Prometheus keeps.
"""

from prometheus_client import Counter, Histogram

# Seconds: from a fast cached GET to a slow export; the job budget alert reads the 30 s bucket.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
JOB_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)

HTTP_REQUESTS = Counter(
    "saas_http_requests",
    "HTTP requests answered, by method, route pattern and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "saas_http_request_duration_seconds",
    "Time from the request entering Django to the response leaving it, by method and route pattern.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
JOB_WAIT = Histogram(
    "saas_job_wait_seconds",
    "Engine jobs: time from queued to the first attempt starting, by job kind.",
    ["kind"],
    buckets=JOB_BUCKETS,
)
JOB_RUN = Histogram(
    "saas_job_run_seconds",
    "Engine jobs: time from the attempt starting to its end (completed, retrying or failed), by kind.",
    ["kind", "outcome"],
    buckets=JOB_BUCKETS,
)
JOBS_FINISHED = Counter(
    "saas_jobs_finished",
    "Jobs that reached a final state (completed, failed, cancelled), any executor.",
    ["status"],
)
WEBHOOK_DELIVERIES = Counter(
    "saas_webhook_deliveries",
    "Signed webhook deliveries received, by source (payments, jobs), provider and outcome.",
    ["source", "provider", "outcome"],
)
CHANNEL_DELIVERIES = Counter(
    "saas_channel_deliveries",
    "Chat messages sent to a channel (LINE, Messenger, …), by channel and outcome (sent, failed).",
    ["channel", "outcome"],
)
EMAILS = Counter("saas_emails", "Emails handed to the mail backend, by outcome (sent, failed).", ["outcome"])

DELIVERY_OUTCOMES = ("sent", "failed")


def channel_delivery_record(*, channel: str, outcome: str) -> None:
    """Count one delivery of a message to a chat channel: `outcome` is "sent" or "failed".

    Call it where the provider's answer is known (after the SDK call returns or raises). A
    failed delivery is what the `ChannelDeliveryFailures` alert watches.
    """
    if outcome not in DELIVERY_OUTCOMES:
        raise ValueError(f"outcome must be one of {DELIVERY_OUTCOMES}, not {outcome!r}")
    CHANNEL_DELIVERIES.labels(channel=channel[:32], outcome=outcome).inc()


def email_record(*, outcome: str) -> None:
    """Count one email handed to the backend: "sent" or "failed"."""
    if outcome not in DELIVERY_OUTCOMES:
        raise ValueError(f"outcome must be one of {DELIVERY_OUTCOMES}, not {outcome!r}")
    EMAILS.labels(outcome=outcome).inc()


def http_request_record(*, method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    HTTP_LATENCY.labels(method=method, route=route).observe(seconds)
