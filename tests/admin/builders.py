"""Rows for every model registered in the admin, `n` at a time, made the way the app makes them
(services for ledgers, stock and orders; the shared factories elsewhere). Used by the
changelist query-count test: a model registered in the admin without a builder here fails it."""

import itertools
from datetime import date, timedelta
from decimal import Decimal

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import Group
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import (
    BillingCycle,
    License,
    ServiceApiKey,
    Subscription,
    SubscriptionPlan,
    User,
    UserPreferences,
)
from accounts.services import api_key_create
from analytics.models import CategoryDailyMetric, DailySalesMetric, ErrorLog, PlatformMetric, ProductAnalytics
from backups.models import BackupLog, RecoverySnapshot, SyncStatus
from config.models import ScheduledRun
from credits.models import (
    CreditAccount,
    CreditBalance,
    CreditPackage,
    CreditTransaction,
    Payment,
    PaymentEvent,
    WebhookLog,
)
from credits.services import credits_grant
from jobs.models import ApiUsageLog, Job, JobDailyStat, JobKind, ModelExport, Project
from jobs.services.models3d import project_create
from shops import services as shop_services
from shops.models import (
    Conversation,
    Form,
    FormSubmission,
    InboundApiKey,
    Item,
    KeywordReply,
    Message,
    PaymentMethod,
    SavedReply,
    Shop,
    ShopInvitation,
    ShopPlan,
    ShopSubscription,
    SocialIntegration,
    StockHistory,
)
from shops.services.inbound_keys import inbound_key_create
from tests.credits.factories import CreditPackageFactory, PaymentFactory
from tests.factories import UserFactory
from tests.jobs.factories import JobFactory
from tests.shops.factories import make_form, make_item, make_shop, place_order

_seq = itertools.count(1)


def _numbers(n):
    return [next(_seq) for _ in range(n)]


def _day(i) -> date:
    return date(2025, 1, 1) + timedelta(days=i)


class _Shared:
    """One parent row per test (a shop, a user, ...) that all the rows of a build hang from;
    reset by the test before it builds."""

    def __init__(self):
        self.rows = {}

    def get(self, name, make):
        if name not in self.rows:
            self.rows[name] = make()
        return self.rows[name]


shared = _Shared()


def _user():
    return shared.get("user", UserFactory)


def _shop():
    # On the unlimited plan: the builders put 50 rows of each kind in one shop.
    return shared.get("shop", lambda: make_shop(plan="enterprise"))


def _item():
    return shared.get("item", lambda: make_item(_shop(), stock=1000))


def _payment():
    return shared.get("payment", lambda: PaymentFactory(user=_user()))


def _conversation():
    return shared.get(
        "conversation", lambda: Conversation.objects.create(shop=_shop(), channel="line", customer_handle="c")
    )


def _job():
    return shared.get("job", lambda: JobFactory(user=_user()))


def _backup():
    return shared.get("backup", lambda: BackupLog.objects.create(started_at=timezone.now()))


def users(n):
    for _ in range(n):
        UserFactory()


def groups(n):
    for i in _numbers(n):
        Group.objects.create(name=f"group {i}")


def totp_devices(n):
    for i in _numbers(n):
        TOTPDevice.objects.create(user=_user(), name=f"phone {i}", confirmed=True)


def outstanding_tokens(n):
    for _ in range(n):
        RefreshToken.for_user(_user())


def blacklisted_tokens(n):
    for _ in range(n):
        RefreshToken.for_user(_user()).blacklist()


def periodic_tasks(n):
    interval = IntervalSchedule.objects.create(every=5, period="minutes")
    for i in _numbers(n):
        PeriodicTask.objects.create(name=f"task {i}", task="config.tasks.noop", interval=interval)


def clocked(n):
    for i in _numbers(n):
        ClockedSchedule.objects.create(clocked_time=timezone.now() + timedelta(hours=i))


def crontabs(n):
    for i in _numbers(n):
        CrontabSchedule.objects.create(minute=str(i % 60), hour=str(i % 24))


def solar(n):
    for i in _numbers(n):
        SolarSchedule.objects.create(event="sunrise", latitude=Decimal(i % 90), longitude=Decimal("100.5"))


def intervals(n):
    for i in _numbers(n):
        IntervalSchedule.objects.create(every=i, period="seconds")


def _axes(model, n, **extra):
    for i in _numbers(n):
        model.objects.create(
            username=f"u{i}@example.com",
            ip_address="10.0.0.1",
            user_agent="pytest",
            http_accept="*/*",
            path_info="/admin/login/",
            **extra,
        )


def scheduled_runs(n):
    for i in _numbers(n):
        ScheduledRun.objects.create(
            task="credits.audit_balances", period_key=f"p{i}", started_at=timezone.now()
        )


def subscriptions(n):
    # One live subscription per user (a partial unique index), so each row has its own user.
    plan = SubscriptionPlan.objects.get(code="premium_monthly")
    for _ in range(n):
        Subscription.objects.create(
            user=UserFactory(), plan=plan, amount=plan.price, end_date=timezone.now() + timedelta(days=30)
        )


def subscription_plans(n):
    for i in _numbers(n):
        SubscriptionPlan.objects.create(
            code=f"plan-{i}",
            name=f"Plan {i}",
            billing_cycle=BillingCycle.MONTHLY,
            price=Decimal("99.00"),
            model_limit=50,
        )


def api_keys(n):
    for i in _numbers(n):
        api_key_create(name=f"worker {i}", scopes=["jobs:write"])


def packages(n):
    for _ in range(n):
        CreditPackageFactory()


def ledger(n):
    for i in _numbers(n):
        credits_grant(user=_user(), amount=1, idempotency_key=f"build:{i}", created_by=_user())


def balances(n):
    for i in _numbers(n):
        credits_grant(user=UserFactory(), amount=1, idempotency_key=f"build:{i}")


def payments(n):
    package = shared.get("package", CreditPackageFactory)
    for _ in range(n):
        PaymentFactory(user=_user(), package=package)


def webhook_logs(n):
    for i in _numbers(n):
        WebhookLog.objects.create(
            source="stripe", event_id=f"evt_{i}", outcome="processed", status_code=200, payment=_payment()
        )


def payment_events(n):
    for i in _numbers(n):
        PaymentEvent.objects.create(
            provider="stripe", event_id=f"evt_{i}", type="payment.succeeded", payment=_payment()
        )


def job_kinds(n):
    for i in _numbers(n):
        JobKind.objects.create(code=f"kind-{i}", name=f"Kind {i}")


def jobs(n):
    for _ in range(n):
        JobFactory(user=_user())


def _model():
    return shared.get(
        "model", lambda: JobFactory(user=_user(), kind=JobKind.objects.get(code="model_import"))
    )


def model_exports(n):
    export_kind = JobKind.objects.get(code="model_export")
    for _ in range(n):
        ModelExport.objects.create(
            job=JobFactory(user=_user(), kind=export_kind),
            user=_user(),
            source_job=_model(),
            format="stl",
            units="mm",
            source_units="mm",
            scale=Decimal("1"),
        )


def projects(n):
    for i in _numbers(n):
        project_create(user=_user(), name=f"Project {i}", model_ids=[_model().pk])


def usage_logs(n):
    for _ in range(n):
        ApiUsageLog.objects.create(provider="openai", units=1, job=_job())


def job_daily_stats(n):
    for i in _numbers(n):
        JobDailyStat.objects.create(user=_user(), date=_day(i))


def shops(n):
    for _ in range(n):
        make_shop(owner=_user())


def items(n):
    for i in range(n):
        # every other one low on stock, so the highlight is rendered too
        make_item(_shop(), stock=1 if i % 2 else 50)


def stock_history(n):
    item = _item()
    for _ in range(n):
        shop_services.stock_update(item=item, change=1, user=_user(), note="build")


def orders(n):
    form = shared.get("form", lambda: make_form(_shop()))
    for _ in range(n):
        place_order(form, [(_item(), 1)])


def shop_plans(n):
    for i in _numbers(n):
        ShopPlan.objects.create(
            code=f"plan-{i}", name=f"Plan {i}", price_monthly=Decimal("99.00"), max_items=10
        )


def shop_subscriptions(n):
    # One live subscription per shop (a partial unique index), so each row has its own shop.
    # The seeded plan when it is there (transactional tests flush seeded rows).
    plan, _ = ShopPlan.objects.get_or_create(
        code="pro", defaults={"name": "Pro", "price_monthly": Decimal("990.00"), "max_items": 10000}
    )
    for _ in range(n):
        now = timezone.now()
        ShopSubscription.objects.create(
            shop=make_shop(owner=_user()),
            plan=plan,
            billing_cycle="monthly",
            amount=plan.price_monthly,
            provider="promptpay",
            start_date=now,
            end_date=now + timedelta(days=30),
        )


def forms_(n):
    for _ in range(n):
        make_form(_shop())


def payment_methods(n):
    for i in _numbers(n):
        PaymentMethod.objects.create(shop=_shop(), kind="promptpay", name=f"PromptPay {i}")


def conversations(n):
    for i in _numbers(n):
        Conversation.objects.create(shop=_shop(), channel="line", customer_handle=f"customer-{i}")


def messages_(n):
    for i in _numbers(n):
        Message.objects.create(
            conversation=_conversation(), direction="inbound", sender="customer", text=f"hi {i}"
        )


def keyword_replies(n):
    for i in _numbers(n):
        KeywordReply.objects.create(shop=_shop(), keywords=[f"price{i}"], reply="100 THB")


def saved_replies(n):
    for i in _numbers(n):
        SavedReply.objects.create(shop=_shop(), title=f"Reply {i}", text="Thanks!")


def integrations(n):
    for i in _numbers(n):
        SocialIntegration.objects.create(shop=_shop(), provider="line", account_id=f"acct-{i}")


def inbound_keys(n):
    for i in _numbers(n):
        inbound_key_create(shop=_shop(), name=f"inbound {i}")


def invitations(n):
    for i in _numbers(n):
        ShopInvitation.objects.create(
            shop=_shop(),
            email=f"invitee{i}@example.com",
            token_hash=f"{i:064d}",
            invited_by=_user(),
            expires_at=timezone.now() + timedelta(days=7),
        )


def daily_sales(n):
    for i in _numbers(n):
        DailySalesMetric.objects.create(shop=_shop(), date=_day(i))


def category_metrics(n):
    for i in _numbers(n):
        CategoryDailyMetric.objects.create(shop=_shop(), date=_day(i), category="toys")


def product_analytics(n):
    for i in _numbers(n):
        ProductAnalytics.objects.create(item=_item(), shop=_shop(), date=_day(i))


def platform_metrics(n):
    for i in _numbers(n):
        PlatformMetric.objects.create(date=_day(i))


def error_logs(n):
    now = timezone.now()
    for i in _numbers(n):
        ErrorLog.objects.create(
            fingerprint=f"fp{i}", message=f"boom {i}", first_seen=now, last_seen=now, user=_user()
        )


def backups(n):
    for _ in range(n):
        BackupLog.objects.create(started_at=timezone.now(), created_by=_user())


def sync_statuses(n):
    for i in _numbers(n):
        SyncStatus.objects.create(backup=_backup(), target=f"target-{i}")


def snapshots(n):
    for i in _numbers(n):
        RecoverySnapshot.objects.create(
            shop=_shop(),
            document={},
            sha256=f"{i:064d}",
            size=2,
            created_by=_user(),
            expires_at=timezone.now() + timedelta(days=1),
        )


BUILDERS = {
    User: users,
    CreditAccount: users,
    License: users,  # every user gets a license and preferences with their profile
    UserPreferences: users,
    Group: groups,
    TOTPDevice: totp_devices,
    OutstandingToken: outstanding_tokens,
    BlacklistedToken: blacklisted_tokens,
    PeriodicTask: periodic_tasks,
    ClockedSchedule: clocked,
    CrontabSchedule: crontabs,
    SolarSchedule: solar,
    IntervalSchedule: intervals,
    AccessAttempt: lambda n: _axes(AccessAttempt, n, get_data="", post_data="", failures_since_start=1),
    AccessLog: lambda n: _axes(AccessLog, n),
    AccessFailureLog: lambda n: _axes(AccessFailureLog, n),
    ScheduledRun: scheduled_runs,
    Subscription: subscriptions,
    SubscriptionPlan: subscription_plans,
    ServiceApiKey: api_keys,
    CreditPackage: packages,
    CreditTransaction: ledger,
    CreditBalance: balances,
    Payment: payments,
    WebhookLog: webhook_logs,
    PaymentEvent: payment_events,
    JobKind: job_kinds,
    Job: jobs,
    ModelExport: model_exports,
    Project: projects,
    ApiUsageLog: usage_logs,
    JobDailyStat: job_daily_stats,
    Shop: shops,
    Item: items,
    StockHistory: stock_history,
    FormSubmission: orders,
    Form: forms_,
    ShopPlan: shop_plans,
    ShopSubscription: shop_subscriptions,
    PaymentMethod: payment_methods,
    Conversation: conversations,
    Message: messages_,
    KeywordReply: keyword_replies,
    SavedReply: saved_replies,
    SocialIntegration: integrations,
    InboundApiKey: inbound_keys,
    ShopInvitation: invitations,
    DailySalesMetric: daily_sales,
    CategoryDailyMetric: category_metrics,
    ProductAnalytics: product_analytics,
    PlatformMetric: platform_metrics,
    ErrorLog: error_logs,
    BackupLog: backups,
    SyncStatus: sync_statuses,
    RecoverySnapshot: snapshots,
}
