"""Every periodic schedule, declared once, all times UTC.

`manage.py sync_schedules` writes these into django-celery-beat's tables (idempotent: it
updates rows by name and never duplicates them), where staff can see and pause them in admin.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    crontab: dict = field(default_factory=dict)  # minute, hour, day_of_week, day_of_month
    interval_seconds: int | None = None
    queue: str | None = None

    @property
    def every_seconds(self) -> int:
        """The longest time between two runs when all is well: the interval, else what the
        crontab's coarsest fixed field implies (a day of the month: 31 days; a weekday: a week;
        an hour: a day; only a minute: an hour). The "schedule overdue" alert compares each
        schedule's last success with this (exported as `saas_schedule_every_seconds`)."""
        if self.interval_seconds:
            return self.interval_seconds
        if self.crontab.get("day_of_month", "*") != "*":
            return 31 * 86400
        if self.crontab.get("day_of_week", "*") != "*":
            return 7 * 86400
        if self.crontab.get("hour", "*") != "*":
            return 86400
        return 3600


SCHEDULES = [
    Schedule(
        "accounts: expire licenses and subscriptions",
        "accounts.expire_licenses",
        crontab={"minute": "10", "hour": "0"},
    ),
    Schedule(
        "credits: renew subscriptions due (new pending payment)",
        "credits.renew_subscriptions",
        crontab={"minute": "5", "hour": "0"},
        queue="default",
    ),
    Schedule(
        "credits: remind renewals ending within RENEWAL_REMINDER_DAYS (email with the checkout)",
        "credits.remind_renewals",
        crontab={"minute": "20", "hour": "0"},
        queue="default",
    ),
    Schedule(
        "shops: renew shop plans due, expire unpaid ones",
        "shops.renew_plans",
        crontab={"minute": "15", "hour": "0"},
        queue="default",
    ),
    Schedule(
        "accounts: flush expired JWT tokens",
        "accounts.flush_expired_tokens",
        crontab={"minute": "30", "hour": "0"},
    ),
    Schedule(
        "credits: nightly ledger audit (balance = SUM(ledger))",
        "credits.audit_balances",
        crontab={"minute": "30", "hour": "1"},
        queue="default",
    ),
    Schedule(
        "analytics: daily metrics (last three closed days)",
        "analytics.generate_daily",
        crontab={"minute": "0", "hour": "2"},
        queue="default",
    ),
    Schedule(
        "jobs: rescue jobs with a stale heartbeat", "jobs.rescue_stale", interval_seconds=60, queue="default"
    ),
    Schedule(
        "shops: stock history cleanup (>365 days)",
        "shops.cleanup_stock_history",
        crontab={"minute": "0", "hour": "6", "day_of_month": "1"},
    ),
    Schedule(
        "shops: re-announce pending chat deliveries",
        "shops.reannounce_deliveries",
        interval_seconds=60,
        queue="default",
    ),
    Schedule(
        "platform: prune old scheduled-run records",
        "platform.prune_scheduled_runs",
        crontab={"minute": "45", "hour": "0"},
    ),
    Schedule(
        "jobs: delete files of jobs dead for JOBS_DEAD_FILES_DAYS",
        "jobs.cleanup_dead_files",
        crontab={"minute": "30", "hour": "4"},
        queue="default",
    ),
    Schedule(
        "backups: daily backup, verified (03:00)",
        "backups.daily",
        crontab={"minute": "0", "hour": "3"},
        queue="default",
    ),
    Schedule(
        "backups: weekly backup with restore test (Sunday 04:00)",
        "backups.weekly",
        crontab={"minute": "0", "hour": "4", "day_of_week": "0"},
        queue="default",
    ),
    Schedule(
        "backups: snapshot cleanup and backup retention (05:00)",
        "backups.retention",
        crontab={"minute": "0", "hour": "5"},
        queue="default",
    ),
    Schedule(
        "backups: offsite sync retry (hourly)",
        "backups.offsite_retry",
        crontab={"minute": "20"},
        queue="default",
    ),
]
