"""analytics_verify after a seeded random order/cancel history; platform metrics hand-computed."""

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import CommandError, call_command

from accounts.models import Subscription
from analytics.models import DailySalesMetric, PlatformMetric
from analytics.services import metrics_generate_platform, metrics_generate_shops
from tests.analytics.factories import cancel_at, order_at
from tests.factories import UserFactory
from tests.shops.factories import make_item, make_shop

pytestmark = pytest.mark.django_db


def test_verify_passes_after_a_random_history_and_catches_a_tampered_row():
    rng = random.Random(20261122)
    shops = [
        make_shop(timezone="Asia/Bangkok", currency="THB"),
        make_shop(timezone="America/Los_Angeles", currency="USD"),
    ]
    expected: dict[tuple, Decimal] = {}
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for shop in shops:
        items = [
            make_item(
                shop,
                stock=1000,
                price=Decimal(rng.randint(1, 500)),
                cost=Decimal(rng.randint(0, 200)),
                category=rng.choice(["a", "b", ""]),
            )
            for _ in range(3)
        ]
        tz = ZoneInfo(shop.timezone)
        for _ in range(25):
            at = start + timedelta(minutes=rng.randint(0, 14 * 24 * 60))
            lines = [(item, rng.randint(1, 3)) for item in rng.sample(items, rng.randint(1, 3))]
            order = order_at(shop, at, lines)
            revenue = sum(item.price * qty for item, qty in lines)
            day = at.astimezone(tz).date()
            expected[(shop.pk, day)] = expected.get((shop.pk, day), Decimal(0)) + revenue
            if rng.random() < 0.3:
                cancelled = at + timedelta(hours=rng.randint(1, 72))
                cancel_at(order, cancelled)
                cday = cancelled.astimezone(tz).date()
                expected[(shop.pk, cday)] = expected.get((shop.pk, cday), Decimal(0)) - revenue
    metrics_generate_shops(date_from=date(2026, 2, 27), date_to=date(2026, 3, 20))
    metrics_generate_platform(date_from=date(2026, 2, 27), date_to=date(2026, 3, 20))
    # the stored net revenue equals an independent computation in Python
    stored = {
        (r.shop_id, r.date): r.net_revenue
        for r in DailySalesMetric.objects.exclude(orders=0, cancelled_orders=0)
    }
    assert stored == {k: v for k, v in expected.items()}
    call_command("analytics_verify", "--from", "2026-02-27", "--to", "2026-03-20")
    # a tampered row is reported and the command fails
    DailySalesMetric.objects.filter(pk=DailySalesMetric.objects.filter(orders__gt=0).first().pk).update(
        net_revenue=Decimal("1.00")
    )
    with pytest.raises(CommandError) as exc:
        call_command("analytics_verify", "--from", "2026-02-27", "--to", "2026-03-20")
    assert exc.value.returncode == 1 and "difference" in str(exc.value)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_mrr_normalises_yearly_to_monthly_and_churn_rate_is_over_30_days():
    users = [UserFactory() for _ in range(4)]
    start = utc(2026, 1, 1)
    # monthly 300, yearly 1200 (→ 100/month), and two monthly 150 that churn
    Subscription.objects.create(
        user=users[0], amount=Decimal("300.00"), start_date=start, end_date=utc(2027, 1, 1)
    )
    Subscription.objects.create(
        user=users[1],
        amount=Decimal("1200.00"),
        billing_cycle="yearly",
        start_date=start,
        end_date=utc(2027, 1, 1),
    )
    Subscription.objects.create(
        user=users[2],
        amount=Decimal("150.00"),
        start_date=start,
        end_date=utc(2027, 1, 1),
        status="cancelled",
        cancelled_at=utc(2026, 3, 10, 12),
    )
    Subscription.objects.create(
        user=users[3],
        amount=Decimal("150.00"),
        start_date=start,
        end_date=utc(2026, 3, 20, 8),
        status="expired",
    )
    # a paid yearly shop plan: 2400/year → 200/month; a free shop does not count
    paid = make_shop(
        timezone="Asia/Bangkok",
        currency="THB",
        plan="pro",
        plan_price=Decimal("2400.00"),
        billing_cycle="yearly",
    )
    make_shop(timezone="America/New_York", currency="USD")
    type(paid).objects.filter(pk=paid.pk).update(created_at=start)
    type(paid).objects.exclude(pk=paid.pk).update(created_at=start)
    metrics_generate_platform(date_from=date(2026, 3, 9), date_to=date(2026, 3, 20))
    before = PlatformMetric.objects.get(date=date(2026, 3, 9))
    assert (before.mrr_users, before.mrr_shops, before.mrr, before.arr) == (
        Decimal("700.00"),
        Decimal("200.00"),
        Decimal("900.00"),
        Decimal("10800.00"),
    )
    assert before.plan_distribution["shops"] == {"free": 1, "basic": 0, "pro": 1, "enterprise": 0}
    on_10th = PlatformMetric.objects.get(date=date(2026, 3, 10))
    assert on_10th.churned_subscriptions == 1 and on_10th.mrr_users == Decimal("550.00")
    # on the 20th: two churned in the last 30 days out of four active 30 days before → 50 %
    on_20th = PlatformMetric.objects.get(date=date(2026, 3, 20))
    assert on_20th.churned_subscriptions == 1 and on_20th.churn_rate == Decimal("50.00")
    assert on_20th.mrr_users == Decimal("400.00")


def test_gmv_is_per_currency_and_active_shops_ordered_in_the_last_30_days():
    bkk = make_shop(timezone="Asia/Bangkok", currency="THB")
    nyc = make_shop(timezone="America/New_York", currency="USD")
    tea = make_item(bkk, stock=100, price=Decimal("100.00"))
    mug = make_item(nyc, stock=100, price=Decimal("12.50"))
    from shops.models import FormSubmission

    order_at(bkk, utc(2026, 4, 1, 10), [(tea, 2)])
    order_at(nyc, utc(2026, 4, 1, 23), [(mug, 1)])
    order_at(nyc, utc(2026, 2, 1, 12), [(mug, 1)])
    FormSubmission.objects.filter(shop=nyc).update(currency="USD")
    metrics_generate_platform(date_from=date(2026, 3, 1), date_to=date(2026, 5, 1))
    day = PlatformMetric.objects.get(date=date(2026, 4, 1))
    assert day.gmv == {"THB": "200.00", "USD": "12.50"} and day.orders == 2 and day.active_shops == 2
    assert PlatformMetric.objects.get(date=date(2026, 3, 1)).active_shops == 1  # NYC's Feb 1 order
    # the 30-day window ending with Apr 30 still holds Apr 1; the one ending with May 1 does not
    assert PlatformMetric.objects.get(date=date(2026, 4, 30)).active_shops == 2
    last = PlatformMetric.objects.get(date=date(2026, 5, 1))
    assert (last.active_shops, last.gmv, last.orders) == (0, {}, 0)


def test_users_jobs_credits_and_chat_are_counted_on_their_utc_day():
    from credits.models import CreditPackage, Payment
    from jobs.models import JobKind
    from shops.models import Conversation, Message
    from tests.jobs.factories import JobFactory

    day = utc(2026, 6, 10, 12)
    joined, returning = UserFactory(), UserFactory()
    type(joined).objects.filter(pk=joined.pk).update(date_joined=day)
    type(joined).objects.filter(pk=returning.pk).update(date_joined=utc(2026, 1, 1), last_login=day)
    kind = JobKind.objects.first()
    # finished jobs as rows (the status guard admits them only through the test factory)
    JobFactory(user=joined, kind=kind, created_at=day, status="completed", completed_at=day)
    JobFactory(user=joined, kind=kind, created_at=day, status="failed", completed_at=day + timedelta(days=1))
    package = CreditPackage.objects.first()
    # completed payments as rows (inserted in their status: the status guard refuses updates)
    Payment.objects.create(
        user=joined,
        package=package,
        credits=package.credits,
        amount=package.price,
        status="completed",
        completed_at=day,
    )
    # a subscription plan's payment is subscription revenue (mrr), not credit revenue
    from accounts.models import SubscriptionPlan

    plan = SubscriptionPlan.objects.first()
    Payment.objects.create(
        user=joined, plan=plan, credits=0, amount=plan.price, status="completed", completed_at=day
    )
    shop = make_shop()
    conversation = Conversation.objects.create(shop=shop, channel="web", customer_handle="c1")
    Message.objects.create(conversation=conversation, direction="inbound", sender="customer", text="hi")
    Message.objects.create(
        conversation=conversation, direction="outbound", sender="ai", text="hello", delivery_status="sent"
    )
    Conversation.objects.filter(pk=conversation.pk).update(created_at=day)
    Message.objects.update(created_at=day)
    metrics_generate_platform(date_from=date(2026, 6, 10), date_to=date(2026, 6, 11))
    row = PlatformMetric.objects.get(date=date(2026, 6, 10))
    assert (row.new_users, row.active_users, row.jobs_created, row.jobs_completed, row.jobs_failed) == (
        1,
        2,
        2,
        1,
        0,
    )
    assert row.credit_revenue == package.price and (row.conversations, row.messages, row.ai_messages) == (
        1,
        2,
        1,
    )
    assert PlatformMetric.objects.get(date=date(2026, 6, 11)).jobs_failed == 1


def test_credit_revenue_and_mrr_are_also_per_currency():
    from accounts.models import SubscriptionPlan
    from credits.models import Payment
    from tests.credits.factories import CreditPackageFactory

    day = utc(2026, 7, 1, 12)
    user = UserFactory(is_staff=True)
    thb = CreditPackageFactory(price=Decimal("299.00"), currency="THB")
    inr = CreditPackageFactory(price=Decimal("499.00"), currency="INR")
    for package in (thb, inr, inr):
        # completed payments as rows (inserted in their status: the status guard refuses updates)
        Payment.objects.create(
            user=user,
            package=package,
            credits=package.credits,
            amount=package.price,
            currency=package.currency,
            provider="razorpay" if package.currency == "INR" else "stripe",
            status="completed",
            completed_at=day,
        )
    plan = SubscriptionPlan.objects.first()
    start, end = utc(2026, 6, 1), utc(2027, 6, 1)
    Subscription.objects.create(
        user=UserFactory(), plan=plan, amount=Decimal("300.00"), start_date=start, end_date=end
    )
    Subscription.objects.create(
        user=UserFactory(), amount=Decimal("1200.00"), currency="INR", start_date=start, end_date=end
    )
    make_shop(currency="INR", plan="pro", plan_price=Decimal("2400.00"), billing_cycle="yearly")
    type(make_shop()).objects.update(created_at=start)

    metrics_generate_platform(date_from=date(2026, 7, 1), date_to=date(2026, 7, 1))

    row = PlatformMetric.objects.get(date=date(2026, 7, 1))
    assert row.credit_revenue == Decimal("299.00")  # the platform currency's figure stays THB only
    assert row.credit_revenue_by_currency == {"THB": "299.00", "INR": "998.00"}
    assert row.mrr == Decimal("300.00")
    assert row.mrr_by_currency == {"THB": "300.00", "INR": "1400.00"}  # 1200 monthly + 2400/12 shop
    from tests.conftest import client_for

    with time_machine.travel(utc(2026, 7, 2, 9), tick=False):
        summary = client_for(user).get("/api/platform/summary").json()
    assert summary["last_30_days"]["credit_revenue_by_currency"] == {"INR": "998.00", "THB": "299.00"}
    assert summary["latest"]["mrr_by_currency"] == {"THB": "300.00", "INR": "1400.00"}
