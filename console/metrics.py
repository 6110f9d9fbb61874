"""GET /metrics: Prometheus's text format, for a scraper holding METRICS_TOKEN.

Two kinds of figures. What processes count (requests, job wait and run times, webhooks,
channel deliveries, emails: config/metrics.py) is read from this process, or in multiprocess
mode (PROMETHEUS_MULTIPROC_DIR) summed over every process of the machine. What the database
knows (queue backlog, each schedule's last success, Beat's last dispatch, the newest verified
backup, the ledger audit) is read at scrape time by `DatabaseCollector`, a handful of indexed
queries, so every web process answers the same.

It lives in the console app because it reads every app (the layers: docs/ARCHITECTURE.md).
docs/OPERATIONS.md ("Metrics") lists every series and the alerts built on them.
"""

import hmac
import logging

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Max, Min
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django_celery_beat.models import PeriodicTask
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from backups.services import backup_latest_verified
from config.exceptions import json_404
from config.models import ScheduledRun
from config.schedules import SCHEDULES
from jobs.models import Job
from jobs.states import CLAIMABLE

logger = logging.getLogger(__name__)

LEDGER_AUDIT_TASK = "credits.audit_balances"


def _timestamp(value) -> float:
    return value.timestamp()


def _queue_messages(conn, name: str) -> int:
    """Messages waiting in queue `name`; 0 for a queue no worker has declared yet (the broker
    answers "not found", which closes an AMQP channel: one channel per queue)."""
    channel = conn.channel()
    try:
        _, messages, _ = channel.queue_declare(queue=name, passive=True)
        return messages
    except conn.channel_errors:
        return 0
    finally:
        channel.close()


class DatabaseCollector:
    """The figures read from the database (and the broker) at each scrape."""

    def collect(self):
        now = timezone.now()
        up = GaugeMetricFamily("saas_database_up", "1 when the database answered this scrape's queries.")
        try:
            # Read before yielding anything, so a database outage leaves out these families
            # whole rather than half of them.
            families = [
                *self._backlog(now),
                *self._schedules(now),
                *self._beat(),
                *self._backup(now),
                *self._ledger_audit(),
            ]
            up.add_metric([], 1)
        except DatabaseError as exc:
            logger.warning("metrics: the database did not answer: %s", exc)
            families = []
            up.add_metric([], 0)
        yield up
        yield from families
        yield from self._broker_queues()

    def _backlog(self, now):
        backlog = GaugeMetricFamily(
            "saas_queue_backlog_jobs",
            "Engine jobs waiting to be claimed (queued or retrying), by kind and priority.",
            labels=["kind", "priority"],
        )
        oldest = GaugeMetricFamily(
            "saas_queue_oldest_job_age_seconds",
            "Age of the oldest engine job waiting to be claimed, by kind (since it was queued).",
            labels=["kind"],
        )
        rows = (
            Job.objects.filter(status__in=CLAIMABLE, runs_on_engine=True)
            .values("kind__code", "priority")
            .annotate(jobs=Count("id"), oldest=Min("queued_at"))
            .order_by()
        )
        oldest_by_kind = {}
        for row in rows:
            backlog.add_metric([row["kind__code"], str(row["priority"])], row["jobs"])
            if row["oldest"] is not None:
                kind = row["kind__code"]
                oldest_by_kind[kind] = min(oldest_by_kind.get(kind, row["oldest"]), row["oldest"])
        for kind, queued_at in oldest_by_kind.items():
            oldest.add_metric([kind], (now - queued_at).total_seconds())
        yield backlog
        yield oldest

    def _broker_queues(self):
        """Messages waiting in each Celery queue, asked of the broker (Redis or RabbitMQ alike,
        through kombu's passive declare). A broker that does not answer gives broker_up 0."""
        from config.celery import app

        depth = GaugeMetricFamily(
            "saas_celery_queue_messages",
            "Messages waiting in each Celery queue of the broker.",
            labels=["queue"],
        )
        up = GaugeMetricFamily("saas_broker_up", "1 when the broker answered this scrape.")
        try:
            with app.connection_for_read() as conn:
                conn.ensure_connection(max_retries=1)
                for queue in settings.CELERY_TASK_QUEUES:
                    depth.add_metric([queue.name], _queue_messages(conn, queue.name))
            up.add_metric([], 1)
        except Exception as exc:  # a broker outage must not fail the scrape
            logger.warning("metrics: the broker did not answer: %s", exc)
            up.add_metric([], 0)
        yield depth
        yield up

    def _schedules(self, now):
        last = GaugeMetricFamily(
            "saas_schedule_last_success_timestamp_seconds",
            "When each schedule's task last finished successfully (ScheduledRun).",
            labels=["task"],
        )
        age = GaugeMetricFamily(
            "saas_schedule_last_success_age_seconds",
            "Seconds since each schedule's task last finished successfully.",
            labels=["task"],
        )
        every = GaugeMetricFamily(
            "saas_schedule_every_seconds",
            "The longest time between two runs of each schedule when all is well.",
            labels=["task"],
        )
        declared = {s.task: s.every_seconds for s in SCHEDULES}
        rows = (
            ScheduledRun.objects.filter(outcome=ScheduledRun.Outcome.SUCCEEDED, task__in=declared)
            .values("task")
            .annotate(last=Max("finished_at"))
            .order_by()
        )
        for row in rows:
            if row["last"] is not None:
                last.add_metric([row["task"]], _timestamp(row["last"]))
                age.add_metric([row["task"]], (now - row["last"]).total_seconds())
        for task, seconds in declared.items():
            every.add_metric([task], seconds)
        yield last
        yield age
        yield every

    def _beat(self):
        beat = GaugeMetricFamily(
            "saas_beat_last_dispatch_timestamp_seconds",
            "When Celery Beat last sent an enabled schedule's task (django-celery-beat's last_run_at; "
            "Beat writes it back every few minutes).",
        )
        latest = PeriodicTask.objects.filter(enabled=True).aggregate(latest=Max("last_run_at"))["latest"]
        if latest is not None:
            beat.add_metric([], _timestamp(latest))
        yield beat

    def _backup(self, now):
        last = GaugeMetricFamily(
            "saas_backup_newest_verified_timestamp_seconds",
            "When the newest verified database backup started (its data is as of then).",
        )
        age = GaugeMetricFamily(
            "saas_backup_newest_verified_age_seconds", "Age of the newest verified database backup."
        )
        backup = backup_latest_verified()
        if backup is not None:
            last.add_metric([], _timestamp(backup.started_at))
            age.add_metric([], (now - backup.started_at).total_seconds())
        yield last
        yield age

    def _ledger_audit(self):
        ok = GaugeMetricFamily(
            "saas_ledger_audit_ok",
            "1 when the last ledger audit found every balance equal to its ledger sum; 0 when it "
            "found mismatches or failed to run.",
        )
        mismatches = GaugeMetricFamily(
            "saas_ledger_audit_mismatches", "Users whose balance differed from the ledger at the last audit."
        )
        when = GaugeMetricFamily(
            "saas_ledger_audit_timestamp_seconds", "When the last ledger audit finished."
        )
        run = (
            ScheduledRun.objects.filter(task=LEDGER_AUDIT_TASK, finished_at__isnull=False)
            .order_by("-started_at")
            .first()
        )
        if run is not None:
            found = int((run.counts or {}).get("mismatches", 0))
            passed = run.outcome == ScheduledRun.Outcome.SUCCEEDED and found == 0
            ok.add_metric([], 1 if passed else 0)
            mismatches.add_metric([], found)
            when.add_metric([], _timestamp(run.finished_at))
        yield ok
        yield mismatches
        yield when


def _authorised(request) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def metrics_exposition() -> bytes:
    """Every series, in Prometheus's text format."""
    if settings.PROMETHEUS_MULTIPROC_DIR:
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        processes = REGISTRY
    database = CollectorRegistry()
    database.register(DatabaseCollector())
    return generate_latest(processes) + generate_latest(database)


@csrf_exempt
def metrics_view(request):
    """GET /metrics. 404 (the JSON envelope, as for any unknown path) without the right bearer
    token, so the endpoint's existence is not advertised."""
    if not _authorised(request) or request.method not in ("GET", "HEAD"):
        return json_404(request)
    return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
