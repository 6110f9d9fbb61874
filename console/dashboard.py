"""The admin index dashboard: today's and the last 30 days' figures, as plain data.

Days are the platform's UTC days (docs/METRICS.md). The 30-day window ends today and includes
it. Days before yesterday come from the stored PlatformMetric rows; yesterday and today are
computed live with the same statement the nightly run stores (the nightly run may not have
closed yesterday yet), so a figure on the dashboard means what it means in the API.

The number of queries is fixed (see QUERIES): none depends on the number of users, orders, jobs,
items, errors, schedules or backups; lists are cut to a few rows.
"""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Avg, F
from django.db.models.functions import TruncDate
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from analytics import sql
from analytics.models import ErrorLog, PlatformMetric
from analytics.services.metrics import platform_params
from backups.models import BackupLog
from config.models import ScheduledRun
from config.schedules import SCHEDULES
from console.charts import daily_bars, horizontal_bars
from credits.models import CURRENCY_THB as PLATFORM_CURRENCY
from jobs.models import Job
from jobs.selectors import job_queue_status
from jobs.states import JobStatus
from jobs.usage import api_cost_by_provider_and_day
from shops.models import Item
from shops.selectors import low_stock_q

DAYS = 30
LIST_LIMIT = 8
GMV_CHARTS = 3  # currencies charted (largest 30-day GMV first); the others are listed only
QUERIES = 18  # what admin_dashboard runs, whatever the data (tests/console/test_dashboard.py)

# PlatformMetric fields shown per day.
DAILY_FIELDS = [
    "orders",
    "credit_revenue",
    "credits_purchased",
    "credits_consumed",
    "new_users",
    "jobs_created",
    "jobs_completed",
    "jobs_failed",
]
ZERO_DAY = {name: 0 for name in DAILY_FIELDS} | {"credit_revenue": Decimal("0.00"), "gmv": {}}


def _live_days(date_from: date, date_to: date) -> dict[date, dict]:
    """PlatformMetric's figures for these UTC days, computed now (not stored). One statement,
    run with JIT off: its many subqueries make the planner's estimate cross jit_above_cost even
    on an empty database, and compiling took 0.5-0.8 s where running takes a few ms."""
    with connection.cursor() as cursor:
        cursor.execute("SET jit = off")
        try:
            cursor.execute(sql.platform_rows_sql(), platform_params(date_from=date_from, date_to=date_to))
        except Exception:
            # Inside a transaction, its rollback undoes the SET (and a RESET would be refused).
            if not connection.in_atomic_block:
                cursor.execute("RESET jit")
            raise
        names = [col.name for col in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        cursor.execute("RESET jit")
    for row in rows:  # Django's psycopg setup returns jsonb as text; JSONField would parse it
        row["gmv"] = json.loads(row["gmv"]) if isinstance(row["gmv"], str) else row["gmv"]
    return {row["date"]: row for row in rows}


def _days(today: date) -> tuple[list[date], dict[date, dict], list[date]]:
    """(the window's days, their figures, the stored days that are missing). Four queries."""
    first, yesterday = today - timedelta(days=DAYS - 1), today - timedelta(days=1)
    days = [first + timedelta(days=i) for i in range(DAYS)]
    stored = {
        row["date"]: row
        for row in PlatformMetric.objects.filter(date__gte=first, date__lt=yesterday).values(
            "date", "gmv", *DAILY_FIELDS
        )
    }
    missing = [d for d in days if d < yesterday and d not in stored]
    figures = {**stored, **_live_days(yesterday, today)}
    return days, {d: figures.get(d, ZERO_DAY) for d in days}, missing


def _gmv(days: list[date], figures: dict[date, dict], today: date) -> list[dict]:
    """Per order currency (never converted): today, the window's total and its chart."""
    currencies: dict[str, Decimal] = {}
    for d in days:
        for currency, amount in figures[d]["gmv"].items():
            currencies[currency] = currencies.get(currency, Decimal("0.00")) + Decimal(amount)
    ordered = sorted(currencies, key=lambda cur: (cur != PLATFORM_CURRENCY, -currencies[cur], cur))
    out = []
    for i, currency in enumerate(ordered):
        points = [(d, Decimal(figures[d]["gmv"].get(currency, "0.00"))) for d in days]
        chart = daily_bars(f"gmv-{currency}", f"GMV ({currency})", points) if i < GMV_CHARTS else None
        out.append(
            {
                "currency": currency,
                "today": Decimal(figures[today]["gmv"].get(currency, "0.00")),
                "total": currencies[currency],
                "chart": chart,
            }
        )
    return out


def _queue_wait_series(first: date, now: datetime) -> dict[date, float]:
    """Average wait from queued to started, in seconds, per UTC day the job started. One query."""
    rows = (
        Job.objects.filter(
            started_at__gte=datetime.combine(first, datetime.min.time(), tzinfo=UTC),
            started_at__lte=now,
            queued_at__isnull=False,
        )
        .annotate(day=TruncDate("started_at", tzinfo=UTC))
        .order_by()
        .values("day")
        .annotate(wait=Avg(F("started_at") - F("queued_at")))
    )
    return {row["day"]: round(row["wait"].total_seconds(), 1) for row in rows}


def _schedules() -> list[dict]:
    """Every declared schedule with its Beat row and its last recorded run. Two queries."""
    last_runs = {
        run.task: run for run in ScheduledRun.objects.order_by("task", "-started_at").distinct("task")
    }
    beat = {task.name: task for task in PeriodicTask.objects.filter(name__in=[s.name for s in SCHEDULES])}
    return [
        {
            "name": schedule.name,
            "task": schedule.task,
            "enabled": beat[schedule.name].enabled if schedule.name in beat else None,
            "last_run": last_runs.get(schedule.task),
        }
        for schedule in SCHEDULES
    ]


def admin_dashboard(*, now: datetime | None = None) -> dict:
    """Everything the admin index shows, as plain data (see the module docstring). 18 queries."""
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    days, figures, missing = _days(today)

    def series(name: str) -> list[tuple[date, int | Decimal]]:
        return [(d, figures[d][name]) for d in days]

    def figure(name: str, title: str) -> dict:
        return {
            "name": name,
            "title": title,
            "today": figures[today][name],
            "total": sum((figures[d][name] for d in days), 0),
            "chart": daily_bars(name, title, series(name)),
        }

    queue = job_queue_status(now=now)  # three queries
    waits = _queue_wait_series(days[0], now)
    job_counts = [(JobStatus(status).label, count) for status, count in queue["counts"].items()]

    low_stock = Item.objects.filter(low_stock_q(), is_active=True)
    open_errors = ErrorLog.objects.filter(resolved_at__isnull=True)
    return {
        "now": now,
        "today": today,
        "date_from": days[0],
        "missing_days": missing,
        "gmv": _gmv(days, figures, today),
        "figures": [
            figure("orders", "Orders"),
            figure("new_users", "New users"),
            figure("credits_purchased", "Credits sold"),
            figure("credits_consumed", "Credits consumed"),
            figure("credit_revenue", f"Credit sales ({PLATFORM_CURRENCY})"),
            figure("jobs_created", "Jobs created"),
            figure("jobs_failed", "Jobs failed"),
        ],
        "jobs": {
            "counts": dict(queue["counts"]),
            "chart": horizontal_bars("jobs-by-status", "Jobs by status", job_counts),
            "average_wait_seconds": queue["average_wait_seconds"],
            "oldest_queued_seconds": queue["oldest_queued_seconds"],
            "wait_chart": daily_bars(
                "queue-wait", "Average queue wait (s)", [(d, waits.get(d, 0)) for d in days]
            ),
            "recent_failed": list(
                Job.objects.filter(status=JobStatus.FAILED)
                .select_related("user", "kind")
                .order_by("-completed_at", "-created_at")[:LIST_LIMIT]
            ),
        },
        "low_stock": {
            "count": low_stock.count(),
            "items": list(
                low_stock.select_related("shop").order_by("stock_quantity", "name", "id")[:LIST_LIMIT]
            ),
        },
        "errors": {
            "count": open_errors.count(),
            "items": list(open_errors.order_by("-last_seen", "id")[:LIST_LIMIT]),
        },
        "schedules": _schedules(),
        # Outside calls (jobs.models.ApiUsageLog) per provider per day over the chart's days,
        # newest day first; cost is what providers stated (blank when none did).
        "api_costs": sorted(
            api_cost_by_provider_and_day(date_from=days[0], date_to=today),
            key=lambda row: (row["day"], row["provider"]),
            reverse=True,
        ),
        "backup": {
            "last": BackupLog.objects.order_by("-started_at", "-id").first(),
            "last_succeeded": BackupLog.objects.filter(status=BackupLog.Status.SUCCEEDED)
            .order_by("-started_at", "-id")
            .first(),
        },
    }
