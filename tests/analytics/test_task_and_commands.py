"""The nightly task (through a real worker) and the backfill / verify commands."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from analytics.models import DailySalesMetric, PlatformMetric
from analytics.services import metrics_generate_daily
from analytics.tasks import generate_daily
from config.celery import app as celery_app
from config.models import ScheduledRun
from config.schedules import SCHEDULES
from tests.analytics.factories import order_at
from tests.jobs.test_engine import wait_for
from tests.shops.factories import make_item, make_shop


def test_the_task_is_scheduled_at_0200_utc_on_the_default_queue():
    (schedule,) = [s for s in SCHEDULES if s.task == "analytics.generate_daily"]
    assert schedule.crontab == {"minute": "0", "hour": "2"} and schedule.queue == "default"
    assert generate_daily.queue == "default"
    assert generate_daily.soft_time_limit < generate_daily.time_limit


@pytest.mark.django_db
def test_nightly_run_lands_a_late_cancellation_and_covers_three_platform_days():
    shop = make_shop(timezone="Asia/Bangkok")
    item = make_item(shop, stock=10, price=Decimal("10.00"))
    order_at(shop, datetime(2026, 5, 18, 3, tzinfo=UTC), [(item, 1)])
    counts = metrics_generate_daily(now=datetime(2026, 5, 20, 2, tzinfo=UTC))
    assert counts["daily_sales"] == 3 and counts["platform"] == 3
    assert sorted(PlatformMetric.objects.values_list("date", flat=True)) == [
        date(2026, 5, 17),
        date(2026, 5, 18),
        date(2026, 5, 19),
    ]
    assert DailySalesMetric.objects.get(shop=shop, date=date(2026, 5, 18)).orders == 1


@pytest.fixture
def default_queue():
    def purge():
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_purge("default")

    purge()
    yield
    purge()


@pytest.fixture
def drop_other_connections():
    yield
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.mark.django_db(transaction=True)
def test_beat_dispatch_runs_on_a_worker_once_per_day(default_queue, drop_other_connections):
    # given a shop with an order yesterday (UTC), so there is something to count
    shop = make_shop(timezone="UTC")
    item = make_item(shop, stock=10, price=Decimal("10.00"))
    order_at(shop, timezone.now() - timedelta(days=1), [(item, 1)])
    # when Beat's message reaches a worker
    with start_worker(
        celery_app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=["default"],
        shutdown_timeout=30,
        loglevel="WARNING",
    ):
        generate_daily.apply_async()
        run = wait_for(
            lambda: ScheduledRun.objects.filter(
                task="analytics.generate_daily", outcome=ScheduledRun.Outcome.SUCCEEDED
            ).first(),
            "the run to succeed",
        )
    # then one ScheduledRun with the counts, and a second run the same day is a no-op
    assert run.counts["daily_sales"] >= 3 and run.counts["platform"] == 3
    assert generate_daily() is None
    assert ScheduledRun.objects.get(task="analytics.generate_daily").attempts == run.attempts
    assert DailySalesMetric.objects.filter(shop=shop, orders=1).count() == 1


@pytest.mark.django_db
def test_generate_metrics_backfills_one_shop_and_the_platform_with_progress():
    shop, other = make_shop(), make_shop()
    out = StringIO()
    call_command(
        "generate_metrics",
        "--from",
        "2026-01-01",
        "--to",
        "2026-03-01",
        "--shop",
        str(shop.pk),
        "--platform",
        stdout=out,
    )
    assert "2/2" in out.getvalue() and "rows written" in out.getvalue()
    assert DailySalesMetric.objects.filter(shop=shop).count() == 60
    assert not DailySalesMetric.objects.filter(shop=other).exists()
    assert PlatformMetric.objects.count() == 60


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ["--from", "2026-02-01", "--to", "2026-01-01"],
        ["--from", "x", "--to", "2026-01-01"],
        ["--from", "2026-01-01", "--to", "2026-01-02", "--shop", "nope"],
        ["--from", "2026-01-01", "--to", "2026-01-02", "--shop", "00000000-0000-0000-0000-000000000000"],
    ],
)
def test_generate_metrics_refuses_bad_input(args):
    with pytest.raises(CommandError):
        call_command("generate_metrics", *args, stdout=StringIO())


@pytest.mark.django_db
def test_analytics_verify_reports_a_missing_row():
    shop = make_shop()
    call_command("generate_metrics", "--from", "2026-01-01", "--to", "2026-01-05", stdout=StringIO())
    call_command(
        "analytics_verify", "--from", "2026-01-01", "--to", "2026-01-05", "--no-platform", stdout=StringIO()
    )
    DailySalesMetric.objects.filter(shop=shop, date=date(2026, 1, 3)).delete()
    out = StringIO()
    with pytest.raises(CommandError):
        call_command(
            "analytics_verify", "--from", "2026-01-01", "--to", "2026-01-05", "--no-platform", stdout=out
        )
    assert "2026-01-03" in out.getvalue() and "[expected]" in out.getvalue()
