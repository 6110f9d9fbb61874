"""The alert rules under promtool, and Debian's Prometheus scraping the app for real."""

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config.models import ScheduledRun

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus"
TOKEN = "prometheus-scrape-token-0123456789"
WAIT_SECONDS = 60


def test_the_alert_rules_are_valid_and_their_unit_tests_pass():
    check = subprocess.run(
        ["promtool", "check", "rules", "alerts.yml"], cwd=RULES, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    run = subprocess.run(
        ["promtool", "test", "rules", "alerts_test.yml", "alerts_test_hours.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("SUCCESS") == 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def prometheus(tmp_path, live_server):
    """Debian's Prometheus on a free port, scraping the live server every second: job `saas` with
    the right bearer token, job `intruder` with a wrong one."""
    host_port = live_server.url.removeprefix("http://")
    port = free_port()
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "prometheus.yml").write_text(
        f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: saas
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: {tmp_path / "token"}
    static_configs:
      - targets: ["{host_port}"]
  - job_name: intruder
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials: not-the-token
    static_configs:
      - targets: ["{host_port}"]
"""
    )
    proc = subprocess.Popen(
        [
            shutil.which("prometheus") or "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)["data"]["result"]
    except (urllib.error.URLError, ConnectionError):
        return []  # Prometheus still starting


def wait_for_result(base: str, promql: str) -> list[dict]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = query(base, promql)
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"Prometheus returned nothing for {promql} within {WAIT_SECONDS} s")


@pytest.mark.django_db(transaction=True)
def test_a_real_prometheus_scrapes_the_app_and_reads_a_series_back(settings, prometheus):
    # given: the token configured, and one success of the nightly ledger audit
    settings.METRICS_TOKEN = TOKEN
    settings.PROMETHEUS_MULTIPROC_DIR = ""
    finished = datetime(2026, 11, 22, 1, 31, 7, tzinfo=UTC)
    ScheduledRun.objects.create(
        task="credits.audit_balances",
        period_key="2026-11-22",
        started_at=datetime(2026, 11, 22, 1, 30, tzinfo=UTC),
        finished_at=finished,
        outcome="succeeded",
        counts={"mismatches": 0},
    )

    # when Prometheus has scraped: the series reads back with its value and labels
    result = wait_for_result(
        prometheus, 'saas_schedule_last_success_timestamp_seconds{job="saas", task="credits.audit_balances"}'
    )
    assert float(result[0]["value"][1]) == finished.timestamp()
    assert float(wait_for_result(prometheus, 'saas_ledger_audit_ok{job="saas"}')[0]["value"][1]) == 1

    # then: the scraper with the right token is up; the one with a wrong token gets nothing
    assert float(wait_for_result(prometheus, 'up{job="saas"}')[0]["value"][1]) == 1
    assert float(wait_for_result(prometheus, 'up{job="intruder"}')[0]["value"][1]) == 0
    assert query(prometheus, '{job="intruder", __name__=~"saas_.*"}') == []
