"""GET /metrics: the bearer token, the figures read from the database, the counts processes keep,
and the multiprocess totals (two real processes counting into one folder)."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from backups.models import BackupLog
from config import gunicorn
from config.metrics import channel_delivery_record
from config.models import ScheduledRun
from config.schedules import SCHEDULES
from jobs.models import JobKind
from tests.jobs.factories import JobFactory

REPO = Path(__file__).resolve().parents[2]
TOKEN = "metrics-test-token-0123456789"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.PROMETHEUS_MULTIPROC_DIR = ""
    return TOKEN


def scrape(token=TOKEN) -> dict[tuple[str, tuple], float]:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(response.content.decode())


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Token {TOKEN}", "Bearer", f"Bearer {TOKEN}x"],
)
def test_metrics_is_a_404_without_the_right_bearer_token(metrics_token, header):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = Client().get("/metrics", **extra)
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


@pytest.mark.django_db
def test_metrics_is_a_404_for_everyone_while_no_token_is_configured(settings):
    settings.METRICS_TOKEN = ""
    for header in ("Bearer ", "Bearer  ", "Bearer None"):
        assert Client().get("/metrics", HTTP_AUTHORIZATION=header).status_code == 404


@pytest.mark.django_db
def test_a_post_to_metrics_is_a_404_even_with_the_token(metrics_token):
    response = Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 404


@pytest.mark.django_db
def test_schedules_backup_and_ledger_audit_are_read_from_the_database(metrics_token, time_machine):
    # given: two successes and a later failure of the daily metrics, a clean ledger audit, and an
    # old verified backup next to a newer one that was never verified
    time_machine.move_to(NOW, tick=False)
    for day, outcome in ((19, "succeeded"), (20, "succeeded"), (21, "failed")):
        ScheduledRun.objects.create(
            task="analytics.generate_daily",
            period_key=f"2026-11-{day}",
            started_at=datetime(2026, 11, day, 2, 0, tzinfo=UTC),
            finished_at=datetime(2026, 11, day, 2, 5, tzinfo=UTC),
            outcome=outcome,
        )
    ScheduledRun.objects.create(
        task="credits.audit_balances",
        period_key="2026-11-22",
        started_at=datetime(2026, 11, 22, 1, 30, tzinfo=UTC),
        finished_at=datetime(2026, 11, 22, 1, 31, tzinfo=UTC),
        outcome="succeeded",
        counts={"mismatches": 0},
    )
    for day, verified in ((21, True), (22, False)):
        started = datetime(2026, 11, day, 3, 0, tzinfo=UTC)
        BackupLog.objects.create(
            kind="daily",
            status="succeeded",
            started_at=started,
            finished_at=started + timedelta(minutes=5),
            file_name=f"{day}.dump",
            sha256="ab" * 32,
            size=100,
            verified_at=started + timedelta(minutes=10) if verified else None,
        )

    # when
    got = scrape()

    # then
    task = (("task", "analytics.generate_daily"),)
    assert (
        got[("saas_schedule_last_success_timestamp_seconds", task)]
        == datetime(2026, 11, 20, 2, 5, tzinfo=UTC).timestamp()
    )
    assert (
        got[("saas_schedule_last_success_age_seconds", task)]
        == (NOW - datetime(2026, 11, 20, 2, 5, tzinfo=UTC)).total_seconds()
    )
    assert got[("saas_schedule_every_seconds", task)] == 86400
    # a declared schedule that never succeeded has its period but no last success
    assert ("saas_schedule_every_seconds", (("task", "jobs.rescue_stale"),)) in got
    assert got[("saas_schedule_every_seconds", (("task", "jobs.rescue_stale"),))] == 60
    assert ("saas_schedule_last_success_timestamp_seconds", (("task", "jobs.rescue_stale"),)) not in got
    assert {k[1][0][1] for k in got if k[0] == "saas_schedule_every_seconds"} == {s.task for s in SCHEDULES}
    assert got[("saas_backup_newest_verified_age_seconds", ())] == 33 * 3600
    assert got[("saas_ledger_audit_ok", ())] == 1
    assert got[("saas_ledger_audit_mismatches", ())] == 0
    assert got[("saas_database_up", ())] == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("outcome", "mismatches"), [("succeeded", 2), ("failed", 0)])
def test_a_ledger_audit_with_mismatches_or_that_failed_reads_not_ok(metrics_token, outcome, mismatches):
    ScheduledRun.objects.create(
        task="credits.audit_balances",
        period_key="2026-11-21",
        started_at=datetime(2026, 11, 21, 1, 30, tzinfo=UTC),
        finished_at=datetime(2026, 11, 21, 1, 31, tzinfo=UTC),
        outcome="succeeded",
        counts={"mismatches": 0},
    )
    ScheduledRun.objects.create(
        task="credits.audit_balances",
        period_key="2026-11-22",
        started_at=datetime(2026, 11, 22, 1, 30, tzinfo=UTC),
        finished_at=datetime(2026, 11, 22, 1, 31, tzinfo=UTC),
        outcome=outcome,
        counts={"mismatches": mismatches},
    )
    got = scrape()
    assert got[("saas_ledger_audit_ok", ())] == 0
    assert got[("saas_ledger_audit_mismatches", ())] == mismatches
    assert (
        got[("saas_ledger_audit_timestamp_seconds", ())]
        == datetime(2026, 11, 22, 1, 31, tzinfo=UTC).timestamp()
    )


@pytest.mark.django_db
def test_queue_backlog_counts_waiting_engine_jobs_by_kind_and_priority(metrics_token, time_machine):
    time_machine.move_to(NOW, tick=False)
    kind = JobKind.objects.create(code="metrics_kind", executor="engine")
    for status, priority, minutes_ago in (
        ("queued", 0, 5),
        ("queued", 0, 2),
        ("retrying", 5, 1),
        ("processing", 0, 60),  # running: not waiting
        ("completed", 0, 90),
    ):
        JobFactory(
            kind=kind,
            status=status,
            priority=priority,
            runs_on_engine=True,
            queued_at=NOW - timedelta(minutes=minutes_ago),
        )
    JobFactory(status="queued", runs_on_engine=False, queued_at=NOW)  # an external worker's job

    got = scrape()

    backlog = {k[1]: v for k, v in got.items() if k[0] == "saas_queue_backlog_jobs"}
    assert backlog == {
        (("kind", "metrics_kind"), ("priority", "0")): 2,
        (("kind", "metrics_kind"), ("priority", "5")): 1,
    }
    assert got[("saas_queue_oldest_job_age_seconds", (("kind", "metrics_kind"),))] == 300
    assert got[("saas_broker_up", ())] == 1
    assert ("saas_celery_queue_messages", (("queue", "jobs"),)) in got


@pytest.mark.django_db
def test_requests_are_counted_by_route_pattern_not_by_path(metrics_token, auth_client):
    route = "api/jobs/<uuid:job_id>"

    def count(status):
        labels = {"method": "GET", "route": route, "status": status}
        return REGISTRY.get_sample_value("saas_http_requests_total", labels) or 0

    def observed():
        labels = {"method": "GET", "route": route}
        return REGISTRY.get_sample_value("saas_http_request_duration_seconds_count", labels) or 0

    before, before_observed = count("404"), observed()
    for job_id in ("5f0c6a8e-3b0f-4a53-9a52-1a2b3c4d5e6f", "6f0c6a8e-3b0f-4a53-9a52-1a2b3c4d5e6f"):
        assert auth_client.get(f"/api/jobs/{job_id}").status_code == 404
    unmatched = (
        REGISTRY.get_sample_value(
            "saas_http_requests_total", {"method": "GET", "route": "unmatched", "status": "404"}
        )
        or 0
    )
    Client().get("/no/such/path/at/all")

    assert count("404") == before + 2
    assert observed() == before_observed + 2
    assert (
        REGISTRY.get_sample_value(
            "saas_http_requests_total", {"method": "GET", "route": "unmatched", "status": "404"}
        )
        == unmatched + 1
    )
    got = scrape()
    assert got[
        ("saas_http_requests_total", (("method", "GET"), ("route", route), ("status", "404")))
    ] == count("404")


@pytest.mark.django_db
def test_a_webhook_for_an_unknown_provider_counts_under_one_label(metrics_token):
    def unknown():
        labels = {"source": "payments", "provider": "unknown", "outcome": "rejected"}
        return REGISTRY.get_sample_value("saas_webhook_deliveries_total", labels) or 0

    before = unknown()
    for name in ("nosuch1", "nosuch2"):
        response = Client().post(
            f"/api/webhooks/payments/{name}", data=b"{}", content_type="application/json"
        )
        assert response.status_code == 404
    assert unknown() == before + 2
    assert (
        REGISTRY.get_sample_value(
            "saas_webhook_deliveries_total",
            {"source": "payments", "provider": "nosuch1", "outcome": "rejected"},
        )
        is None
    )


def test_channel_delivery_record_refuses_an_outcome_it_does_not_know():
    with pytest.raises(ValueError):
        channel_delivery_record(channel="line", outcome="maybe")


COUNT_IN_A_PROCESS = """
import sys
from config.metrics import JOB_WAIT, channel_delivery_record
for _ in range(int(sys.argv[1])):
    channel_delivery_record(channel="line", outcome="failed")
JOB_WAIT.labels(kind="test_noop").observe(float(sys.argv[2]))
print("done", flush=True)
"""


@pytest.mark.django_db
def test_multiprocess_totals_add_up_every_process_dead_ones_included(metrics_token, settings, tmp_path):
    # given: two real processes (as two gunicorn workers or Celery pool processes would) counting
    # into one PROMETHEUS_MULTIPROC_DIR
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", COUNT_IN_A_PROCESS, str(n), str(wait)],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n, wait in ((3, 0.3), (4, 45.0))
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "done" in out, err
    assert len(list(folder.glob("*.db"))) >= 2  # one file per process at least

    # when: gunicorn's master marks both as dead (as it does when a worker exits), then a scrape
    settings.PROMETHEUS_MULTIPROC_DIR = str(folder)
    for proc in procs:
        gunicorn.child_exit(None, type("Worker", (), {"pid": proc.pid})())
    got = scrape()

    # then: the totals are the sums over both processes
    assert got[("saas_channel_deliveries_total", (("channel", "line"), ("outcome", "failed")))] == 7
    assert got[("saas_job_wait_seconds_count", (("kind", "test_noop"),))] == 2
    assert got[("saas_job_wait_seconds_sum", (("kind", "test_noop"),))] == pytest.approx(45.3)
    assert got[("saas_job_wait_seconds_bucket", (("kind", "test_noop"), ("le", "30.0")))] == 1
    assert got[("saas_job_wait_seconds_bucket", (("kind", "test_noop"), ("le", "60.0")))] == 2
