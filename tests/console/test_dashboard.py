"""The admin index dashboard: figures at a pinned time, hand-computed; a query count
that does not grow with the data; who sees it."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from analytics.models import ErrorLog, PlatformMetric
from analytics.services import metrics_generate_platform
from backups.models import BackupLog
from config.models import ScheduledRun
from config.schedules import SCHEDULES
from console.charts import daily_bars, horizontal_bars
from console.dashboard import DAYS, QUERIES, admin_dashboard
from credits.services import credits_charge, credits_grant
from credits.services.payments import payment_complete
from jobs.models import ApiUsageLog
from shops.models import FormSubmission
from tests.analytics.factories import order_at
from tests.credits.factories import PaymentFactory
from tests.factories import UserFactory, admin_login
from tests.jobs.factories import JobFactory
from tests.shops.factories import make_item, make_shop

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)


def at(days_ago: int, hour: int = 10) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time(), tzinfo=UTC).replace(
        hour=hour
    )


def figure(dashboard: dict, name: str) -> dict:
    return next(f for f in dashboard["figures"] if f["name"] == name)


def bar_values(chart) -> dict[str, object]:
    return {bar.label: bar.value for bar in chart.bars if bar.value}


@pytest.fixture
def pinned():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def shops():
    bkk = make_shop(timezone="Asia/Bangkok", currency="THB")
    nyc = make_shop(timezone="America/New_York", currency="USD")
    return bkk, nyc


def place(shop, when: datetime, item, qty: int, currency: str | None = None):
    order = order_at(shop, when, [(item, qty)])
    if currency:
        FormSubmission.objects.filter(pk=order.pk).update(currency=currency)
    return order


def test_figures_add_the_stored_days_to_yesterday_and_today_computed_live(pinned, shops):
    # given: orders today, yesterday, 10 and 29 days ago (in the window) and 30 days ago (not)
    bkk, nyc = shops
    tea = make_item(bkk, stock=1000, price=Decimal("100.00"))
    mug = make_item(nyc, stock=1000, price=Decimal("12.50"))
    place(bkk, at(0), tea, 2)
    place(bkk, at(1), tea, 1)
    place(bkk, at(10), tea, 3)
    place(bkk, at(29), tea, 1)
    place(bkk, at(30), tea, 5)
    place(nyc, at(5), mug, 2, currency="USD")
    # users: everyone joined long ago except two today, one 10 days ago, one 30 days ago
    User.objects.update(date_joined=LONG_AGO)
    new = [UserFactory() for _ in range(4)]
    User.objects.filter(pk=new[2].pk).update(date_joined=at(10))
    User.objects.filter(pk=new[3].pk).update(date_joined=at(30))
    # credits: a purchase of 10 today and of 10 three days ago; 4 + 3 consumed in the window
    buyer = new[0]
    for days_ago in (0, 3):
        with time_machine.travel(at(days_ago), tick=False):
            payment_complete(payment=PaymentFactory(user=buyer))
    with time_machine.travel(at(2), tick=False):
        credits_charge(user=buyer, amount=4, idempotency_key="t:usage:1")
    credits_charge(user=buyer, amount=3, idempotency_key="t:usage:2")
    with time_machine.travel(at(31), tick=False):
        credits_grant(user=buyer, amount=50, idempotency_key="t:old", type="purchase")
    # jobs: one failed today, one failed 20 days ago, one completed yesterday
    JobFactory(user=buyer, status="failed", created_at=at(0, 8), completed_at=at(0, 9))
    JobFactory(user=buyer, status="failed", created_at=at(20), completed_at=at(20, 11))
    JobFactory(user=buyer, status="completed", created_at=at(1), completed_at=at(1, 11))
    # the nightly run stored every day up to yesterday; then one more order came yesterday
    metrics_generate_platform(date_from=TODAY - timedelta(days=40), date_to=TODAY - timedelta(days=1))
    place(bkk, at(1, 23), tea, 4)

    # when
    dashboard = admin_dashboard()

    # then: GMV per currency, THB first; yesterday's late order counts (computed live)
    assert [(g["currency"], g["today"], g["total"]) for g in dashboard["gmv"]] == [
        ("THB", Decimal("200.00"), Decimal("1100.00")),  # 200 + 100 + 400 + 300 + 100
        ("USD", Decimal("0.00"), Decimal("25.00")),
    ]
    thb_chart = dashboard["gmv"][0]["chart"]
    assert len(thb_chart.bars) == DAYS and thb_chart.bars[-1].label == TODAY.isoformat()
    assert bar_values(thb_chart) == {
        (TODAY - timedelta(days=29)).isoformat(): Decimal("100.00"),
        (TODAY - timedelta(days=10)).isoformat(): Decimal("300.00"),
        (TODAY - timedelta(days=1)).isoformat(): Decimal("500.00"),
        TODAY.isoformat(): Decimal("200.00"),
    }
    orders = figure(dashboard, "orders")
    assert (orders["today"], orders["total"]) == (1, 6)
    new_users = figure(dashboard, "new_users")
    assert (new_users["today"], new_users["total"]) == (2, 3)
    sold, consumed = figure(dashboard, "credits_purchased"), figure(dashboard, "credits_consumed")
    assert (sold["today"], sold["total"]) == (10, 20)
    assert (consumed["today"], consumed["total"]) == (3, 7)
    revenue = figure(dashboard, "credit_revenue")
    assert (revenue["today"], revenue["total"]) == (Decimal("299.00"), Decimal("598.00"))
    failed = figure(dashboard, "jobs_failed")
    assert (failed["today"], failed["total"]) == (1, 2)
    assert dashboard["missing_days"] == []
    assert dashboard["jobs"]["counts"]["failed"] == 2 and dashboard["jobs"]["counts"]["completed"] == 1


def test_days_before_yesterday_are_read_from_the_stored_metrics_and_missing_ones_are_reported(pinned, shops):
    bkk, _ = shops
    tea = make_item(bkk, stock=100, price=Decimal("100.00"))
    place(bkk, at(10), tea, 1)
    place(bkk, at(1), tea, 1)
    metrics_generate_platform(date_from=TODAY - timedelta(days=29), date_to=TODAY - timedelta(days=3))
    # a stored day is what the dashboard shows (a correction made to it is seen) …
    PlatformMetric.objects.filter(date=TODAY - timedelta(days=10)).update(orders=7)

    dashboard = admin_dashboard()

    assert bar_values(figure(dashboard, "orders")["chart"]) == {
        (TODAY - timedelta(days=10)).isoformat(): 7,
        (TODAY - timedelta(days=1)).isoformat(): 1,  # yesterday: live, though never stored
    }
    # … and the day before yesterday, never generated, is reported missing
    assert dashboard["missing_days"] == [TODAY - timedelta(days=2)]


def test_queue_wait_low_stock_errors_schedules_and_backups(pinned, shops):
    bkk, _ = shops
    user = UserFactory()
    JobFactory(
        user=user, status="processing", queued_at=at(0, 8), started_at=at(0, 8) + timedelta(seconds=30)
    )
    JobFactory(user=user, status="completed", queued_at=at(0, 9), started_at=at(0, 9) + timedelta(seconds=90))
    JobFactory(user=user, status="completed", queued_at=at(3), started_at=at(3) + timedelta(seconds=10))
    empty = make_item(bkk, stock=0, name="Empty", low_stock_threshold=2)
    make_item(bkk, stock=2, name="At threshold", low_stock_threshold=2)
    make_item(bkk, stock=3, name="Fine", low_stock_threshold=2)
    make_item(bkk, stock=0, name="Retired", low_stock_threshold=2, is_active=False)
    make_item(bkk, stock=0, name="Untracked", track_stock=False)
    ErrorLog.objects.create(fingerprint="a", message="open one", first_seen=NOW, last_seen=NOW)
    ErrorLog.objects.create(
        fingerprint="b", message="resolved", first_seen=NOW, last_seen=NOW, resolved_at=NOW
    )
    task = SCHEDULES[0].task
    ScheduledRun.objects.create(task=task, period_key="old", started_at=at(2), outcome="succeeded")
    latest = ScheduledRun.objects.create(task=task, period_key="new", started_at=at(1), outcome="failed")
    BackupLog.objects.create(
        kind="daily", status="succeeded", started_at=at(2), file_name="a.dump", sha256="0" * 64
    )
    failed_backup = BackupLog.objects.create(kind="daily", status="failed", started_at=at(1))

    dashboard = admin_dashboard()

    jobs = dashboard["jobs"]
    assert jobs["average_wait_seconds"] == 60.0  # (30 + 90) / 2 over the last 24 h
    assert bar_values(jobs["wait_chart"]) == {
        TODAY.isoformat(): 60.0,
        (TODAY - timedelta(days=3)).isoformat(): 10.0,
    }
    assert dashboard["low_stock"]["count"] == 2
    assert [i.name for i in dashboard["low_stock"]["items"]] == ["Empty", "At threshold"]
    assert dashboard["low_stock"]["items"][0] == empty
    assert dashboard["errors"]["count"] == 1 and [e.message for e in dashboard["errors"]["items"]] == [
        "open one"
    ]
    schedules = {s["task"]: s for s in dashboard["schedules"]}
    assert len(dashboard["schedules"]) == len(SCHEDULES)
    assert schedules[task]["last_run"] == latest
    assert schedules[SCHEDULES[1].task]["last_run"] is None
    assert dashboard["backup"]["last"] == failed_backup
    assert dashboard["backup"]["last_succeeded"].file_name == "a.dump"


def make_data(n: int, shop) -> None:
    """n of everything the dashboard reads: orders, users, ledger rows, jobs, low-stock items,
    open errors, scheduled runs and backups."""
    item = make_item(shop, stock=10_000, price=Decimal("10.00"))
    users = [UserFactory() for _ in range(n)]
    for i in range(n):
        place(shop, at(i % DAYS), item, 1)
        credits_grant(user=users[i], amount=5, idempotency_key=f"qc:{n}:{i}", type="purchase")
        credits_charge(user=users[i], amount=1, idempotency_key=f"qc:{n}:{i}:use")
        JobFactory(user=users[i], status="failed", created_at=at(i % 3), completed_at=at(i % 3, 11))
        JobFactory(user=users[i], status="completed", queued_at=at(i % 3), started_at=at(i % 3, 11))
        make_item(shop, stock=0, low_stock_threshold=1)
        ErrorLog.objects.create(fingerprint=f"{n}-{i}", message=f"e{i}", first_seen=NOW, last_seen=NOW)
        ScheduledRun.objects.create(
            task=SCHEDULES[i % len(SCHEDULES)].task, period_key=f"{n}-{i}", started_at=at(i)
        )
        BackupLog.objects.create(kind="daily", status="failed", started_at=at(i))
        ApiUsageLog.objects.create(provider=f"p{i % 4}", endpoint="e", cost=Decimal("0.01"))
    metrics_generate_platform(date_from=TODAY - timedelta(days=DAYS), date_to=TODAY - timedelta(days=1))


def index_queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/admin/")
    assert response.status_code == 200 and b'id="dashboard"' in response.content
    return len(captured)


def test_the_dashboard_runs_the_same_number_of_queries_for_3_and_30_rows_of_everything(pinned, shops):
    superuser = User.objects.create_superuser("root@example.com", "Admin-Console-Pass-7")
    client = Client()
    admin_login(client, superuser)
    bkk, _ = shops

    make_data(3, bkk)
    with CaptureQueriesContext(connection) as captured:
        admin_dashboard()
    small_page = index_queries(client)
    make_data(30, bkk)
    large_page = index_queries(client)

    assert len(captured) == QUERIES
    assert small_page == large_page


def test_only_staff_allowed_to_read_platform_metrics_see_the_dashboard():
    staff = UserFactory(is_staff=True)
    client = Client()
    admin_login(client, staff)

    plain = client.get("/admin/")
    staff.user_permissions.add(Permission.objects.get(codename="view_platformmetric"))
    allowed = client.get("/admin/")

    assert plain.status_code == 200 and b'id="dashboard"' not in plain.content
    assert allowed.status_code == 200 and b'id="dashboard"' in allowed.content
    assert allowed.content.count(b'class="dash-chart') >= 8


def test_view_site_leads_to_the_frontend_not_to_the_api_hosts_404(settings):
    superuser = User.objects.create_superuser("root@example.com", "Admin-Console-Pass-7")
    client = Client()
    admin_login(client, superuser)

    response = client.get("/admin/")

    assert response.context["site_url"] == f"{settings.FRONTEND_URL}/"
    assert f'href="{settings.FRONTEND_URL}/"'.encode() in response.content


def test_daily_bars_scale_to_the_largest_value_and_keep_every_day():
    days = [date(2026, 6, d) for d in range(1, 5)]
    chart = daily_bars(
        "x", "X", list(zip(days, [0, 5, 10, Decimal("2.5")], strict=True)), width=40, height=22
    )

    assert [b.height for b in chart.bars] == [0.0, 10.0, 20.0, 5.0]
    assert [round(b.y + b.height, 2) for b in chart.bars] == [21.0] * 4  # all stand on the baseline
    assert [b.x for b in chart.bars] == [0, 10, 20, 30] and chart.total == Decimal("17.5")
    assert (chart.first_label, chart.last_label, chart.max_value) == ("01 Jun", "04 Jun", 10)


def test_horizontal_bars_of_nothing_draw_empty_bars_not_a_division_by_zero():
    chart = horizontal_bars("y", "Y", [("a", 0), ("b", 0)], width=300)

    assert [b.width for b in chart.bars] == [0.0, 0.0] and chart.height == 36


def test_the_dashboard_shows_calls_and_cost_per_provider_per_day(pinned):
    # given outside calls of two providers over two days, one with no stated cost
    for provider, day, cost, ok in [
        ("replicate", 0, Decimal("0.0100"), True),
        ("replicate", 0, Decimal("0.0250"), False),
        ("replicate", 1, Decimal("0.5000"), True),
        ("stripe", 0, None, True),
    ]:
        row = ApiUsageLog.objects.create(provider=provider, endpoint="x", cost=cost, succeeded=ok)
        ApiUsageLog.objects.filter(pk=row.pk).update(created_at=at(day))
    ApiUsageLog.objects.filter(provider="stripe").update(created_at=at(DAYS + 5))  # out of range
    ApiUsageLog.objects.create(provider="stripe", endpoint="x")
    # when the dashboard is computed
    rows = admin_dashboard()["api_costs"]
    # then one row per provider per day, newest first, costs summed as stated
    assert [(r["day"], r["provider"], r["calls"], r["failed"], r["cost"]) for r in rows] == [
        (TODAY, "stripe", 1, 0, None),
        (TODAY, "replicate", 2, 1, Decimal("0.0350")),
        (TODAY - timedelta(days=1), "replicate", 1, 0, Decimal("0.5000")),
    ]
    superuser = User.objects.create_superuser("root@example.com", "Admin-Console-Pass-7")
    client = Client()
    admin_login(client, superuser)
    page = client.get("/admin/").content.decode()
    assert 'id="dash-api-costs"' in page and "0.0350" in page
