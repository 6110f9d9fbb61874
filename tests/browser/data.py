"""At least one row of every model the admin lists, so every change page can be opened.

The demo data (`manage.py seed_demo`, through the services) covers users, credits, jobs and the
shops; the rest is made here through the services where one exists, and as plain rows for logs
and third-party tables.
"""

import io
import random
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import time_machine
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, SolarSchedule
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services as accounts_services
from accounts.models import User
from analytics.services import metrics_generate_platform, metrics_generate_shops
from analytics.services.errors import error_log_record
from backups.models import BackupLog, SyncStatus
from backups.services.snapshots import snapshot_create
from config.models import ScheduledRun
from credits.models import CreditPackage, Payment, PaymentEvent, WebhookLog
from credits.services import credits_charge, payment_complete, purchase_start
from jobs.models import ApiUsageLog, Job, JobKind
from shops.models import Shop, SocialIntegration
from shops.services.inbound_keys import inbound_key_create
from shops.services.invitations import invitation_create
from tests.analytics.factories import order_at
from tests.factories import UserFactory
from tests.jobs.factories import JobFactory
from tests.shops.factories import make_form, make_item


def one_of_everything() -> dict:
    call_command("seed_demo", stdout=io.StringIO())
    call_command("sync_schedules", stdout=io.StringIO())  # Beat's tables, as `make setup` fills them
    now = timezone.now()
    demo = User.objects.get(email="demo@example.com")
    staff = User.objects.get(email="admin@example.com")
    shop = Shop.objects.order_by("created_at").first()
    Group.objects.get_or_create(name="Support")
    RefreshToken.for_user(demo)  # an outstanding token …
    RefreshToken.for_user(demo).blacklist()  # … and a blacklisted one
    ClockedSchedule.objects.create(clocked_time=now + timedelta(days=1))
    SolarSchedule.objects.create(event="sunrise", latitude=Decimal("13.75"), longitude=Decimal("100.5"))
    from axes.models import AccessAttempt, AccessFailureLog

    attempt = {"user_agent": "browser-test", "ip_address": "127.0.0.1", "username": demo.email}
    attempt |= {"http_accept": "text/html", "path_info": "/admin/login/"}
    AccessAttempt.objects.create(**attempt, get_data="", post_data="", failures_since_start=1)
    AccessFailureLog.objects.create(**attempt)
    ScheduledRun.objects.create(
        task="credits.audit_balances", period_key=now.date().isoformat(), started_at=now, outcome="succeeded"
    )
    accounts_services.subscription_activate(
        user=demo,
        amount=Decimal("299.00"),
        currency="THB",
        billing_cycle="monthly",
        start=now,
        end=now + timedelta(days=30),
    )
    accounts_services.api_key_create(name="render-worker", scopes=["jobs:write"])
    payment = Payment.objects.filter(user=demo).first()
    WebhookLog.objects.create(
        source="payments",
        provider="stripe",
        event_id="evt_1",
        event_type="payment.succeeded",
        status_code=200,
    )
    PaymentEvent.objects.create(
        provider="stripe", event_id="evt_1", type="payment.succeeded", payment=payment
    )
    ApiUsageLog.objects.create(job=Job.objects.first(), provider="mesh-api", endpoint="/v1/convert", units=1)
    SocialIntegration.objects.create(
        shop=shop, provider="line", account_id="acc-1", access_token="secret-token"
    )
    inbound_key_create(shop=shop, name="website chat")
    invitation_create(shop=shop, email="new.member@example.com", role="staff", invited_by=shop.owner)
    today = now.date()
    metrics_generate_shops(date_from=today - timedelta(days=2), date_to=today)
    metrics_generate_platform(date_from=today - timedelta(days=2), date_to=today)
    error_log_record(message="TypeError: x is undefined", stack="at app.js:1", url="https://app.example.com/")
    backup = BackupLog.objects.create(kind="daily", status="failed", started_at=now, error="disk full")
    SyncStatus.objects.create(backup=backup, target="offsite")
    snapshot_create(shop=shop, created_by=staff, note="before import")
    return {"demo": demo, "shop": shop}


def thirty_days_of_activity(*, seed: int = 12) -> None:
    """A month of business for pictures of the dashboard: every past day some orders, sign-ups,
    credit purchases and usage, and jobs (some failed), each made at that day's time (the
    nightly run then stores the closed days). Deterministic for a seed."""
    rng = random.Random(seed)
    shop = Shop.objects.order_by("created_at").first()
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
                payment_complete(payment=purchase_start(user=buyer, package=package, provider="stripe"))
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


PRODUCTS = [
    ("390.00", "Linen shirt"),
    ("120.00", "Canvas tote"),
    ("890.00", "Denim jacket"),
    ("60.00", "Socks"),
]
