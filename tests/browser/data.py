"""Data for the browser tests: a row of every model the admin lists, and a month of activity.

The demo data (`manage.py seed_demo`, through the services) gives users, credits, jobs and a
shop that look like the product; the admin tests' builders (one per registered model) fill in
the rest.
"""

import io
import random
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import time_machine
from django.contrib import admin
from django.core.management import call_command
from django.utils import timezone

from accounts import services as accounts_services
from accounts.models import SubscriptionPlan, User
from analytics.services import metrics_generate_platform
from analytics.services.errors import error_log_record
from backups.models import BackupLog
from config.models import ScheduledRun
from config.schedules import SCHEDULES
from credits.models import CreditPackage
from credits.services import credits_charge, payment_complete, purchase_start
from jobs.models import JobKind
from shops.management.commands.seed_demo_shops import DEMO_SHOP_SLUG
from shops.models import Shop
from tests.admin.builders import BUILDERS, shared
from tests.analytics.factories import order_at
from tests.factories import UserFactory
from tests.jobs.factories import JobFactory
from tests.shops.factories import make_form, make_item


def one_of_everything() -> dict:
    """The demo data, Beat's schedules, a subscription and a client error for the demo user's
    pages, then one row of each registered model that still has none."""
    call_command("seed_demo", stdout=io.StringIO())
    call_command("sync_schedules", stdout=io.StringIO())  # Beat's tables, as `make setup` fills them
    demo = User.objects.get(email="demo@example.com")
    accounts_services.subscription_activate(
        user_id=demo.pk, plan=SubscriptionPlan.objects.get(code="premium_monthly")
    )
    error_log_record(message="TypeError: x is undefined", stack="at app.js:1", url="https://app.example.com/")
    shared.rows.clear()
    try:
        for model in admin.site._registry:
            if not model._default_manager.exists():
                BUILDERS[model](1)
    finally:
        shared.rows.clear()
    return {"demo": demo, "shop": Shop.objects.get(slug=DEMO_SHOP_SLUG)}


def thirty_days_of_activity(*, seed: int = 12) -> None:
    """A month of business for pictures of the dashboard: every past day some orders, sign-ups,
    credit purchases and usage, and jobs (some failed), each made at that day's time (the
    nightly run then stores the closed days). Deterministic for a seed."""
    rng = random.Random(seed)
    shop = Shop.objects.get(slug=DEMO_SHOP_SLUG)
    items = [make_item(shop, stock=10_000, price=Decimal(p), name=n) for p, n in PRODUCTS]
    form = make_form(shop)
    package = CreditPackage.objects.get(name="Starter Pack")
    kind = JobKind.objects.get(code="account_batch")
    now = timezone.now()
    today = now.astimezone(UTC).date()
    for days_ago in range(29, 0, -1):
        day = datetime.combine(today - timedelta(days=days_ago), time(9), tzinfo=UTC)
        with time_machine.travel(day, tick=False):
            for _ in range(rng.randint(2, 9)):
                at = day + timedelta(minutes=rng.randint(0, 600))
                order_at(shop, at, [(rng.choice(items), rng.randint(1, 3))], form=form)
            buyers = [UserFactory() for _ in range(rng.randint(0, 4))]
            for buyer in buyers:
                payment_complete(payment=purchase_start(user=buyer, package=package, provider="truemoney"))
                credits_charge(
                    user=buyer, amount=rng.randint(1, package.credits), idempotency_key=f"demo:{buyer.pk}"
                )
            for _ in range(rng.randint(3, 10)):
                status = rng.choice(["completed"] * 6 + ["failed"])
                queued = day + timedelta(minutes=rng.randint(0, 500))
                started = queued + timedelta(seconds=rng.randint(2, 90))
                JobFactory(
                    user=buyers[0] if buyers else User.objects.get(email="demo@example.com"),
                    kind=kind,
                    status=status,
                    created_at=queued,
                    queued_at=queued,
                    started_at=started,
                    completed_at=started + timedelta(seconds=rng.randint(5, 120)),
                    error="Upstream timeout after 3 attempts" if status == "failed" else "",
                )
    metrics_generate_platform(date_from=today - timedelta(days=29), date_to=today - timedelta(days=1))
    # last night's schedules and backup, as the worker records them
    night = datetime.combine(today - timedelta(days=1), time(3), tzinfo=UTC)
    for i, schedule in enumerate(SCHEDULES):
        started = night + timedelta(minutes=7 * i)
        ScheduledRun.objects.update_or_create(
            task=schedule.task,
            period_key=f"{night.date().isoformat()}:{i}",
            defaults={"started_at": started, "finished_at": started + timedelta(seconds=rng.randint(1, 40))}
            | {"outcome": "failed" if schedule.task == "backups.offsite_retry" else "succeeded"},
        )
    BackupLog.objects.create(
        kind="daily",
        status="succeeded",
        started_at=night,
        finished_at=night + timedelta(seconds=42),
        size=48_213_504,
        file_name="daily/demo.dump",
        sha256="0" * 64,
        verified_at=night + timedelta(minutes=1),
    )


PRODUCTS = [
    ("390.00", "Linen shirt"),
    ("120.00", "Canvas tote"),
    ("890.00", "Denim jacket"),
    ("60.00", "Socks"),
]
