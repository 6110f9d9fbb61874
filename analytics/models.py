"""Analytics: pre-aggregated metrics and the client error log.

Every metric row is written only by `analytics.services.metrics` with one set-based
`INSERT … SELECT … ON CONFLICT DO UPDATE` per table and range; the upsert touches a row only
when a value changed, so generating a range twice leaves every row (and its updated_at) as it
was. The definitions of the figures are in docs/METRICS.md.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from config.models import UUIDModel
from shops.models import Item, Shop

MONEY = {"max_digits": 14, "decimal_places": 2, "default": Decimal("0.00")}
PCT = {"max_digits": 9, "decimal_places": 2, "null": True, "blank": True}


class DailySalesMetric(models.Model):
    """One shop's sales on one of its local days (dense: a row for every day generated)."""

    id = models.BigAutoField(primary_key=True)
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    orders = models.IntegerField(default=0)
    items_sold = models.IntegerField(default=0)
    gross_revenue = models.DecimalField(**MONEY)
    cancelled_orders = models.IntegerField(default=0)
    cancelled_revenue = models.DecimalField(**MONEY)
    net_revenue = models.DecimalField(**MONEY)
    cost = models.DecimalField(**MONEY)
    gross_profit = models.DecimalField(**MONEY)
    avg_order_value = models.DecimalField(**MONEY)
    unique_customers = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["shop", "date"]
        constraints = [models.UniqueConstraint(fields=["shop", "date"], name="daily_sales_unique")]

    def __str__(self):
        return f"{self.shop_id} {self.date}"


class CategoryDailyMetric(models.Model):
    """One category of one shop on one local day (sparse: only categories that moved)."""

    id = models.BigAutoField(primary_key=True)
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    category = models.CharField(max_length=100, blank=True, default="")
    items_sold = models.IntegerField(default=0)
    revenue = models.DecimalField(**MONEY)
    cost = models.DecimalField(**MONEY)
    profit = models.DecimalField(**MONEY)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["shop", "date", "category"]
        constraints = [
            models.UniqueConstraint(fields=["shop", "date", "category"], name="category_daily_unique"),
        ]

    def __str__(self):
        return f"{self.shop_id} {self.date} {self.category!r}"


class ProductAnalytics(models.Model):
    """One item on one local day of its shop (sparse: only items that were ordered or cancelled)."""

    id = models.BigAutoField(primary_key=True)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    # Denormalised from the item so a shop's range is one index scan.
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    orders = models.IntegerField(default=0)
    units_sold = models.IntegerField(default=0)
    revenue = models.DecimalField(**MONEY)
    cost = models.DecimalField(**MONEY)
    profit = models.DecimalField(**MONEY)
    margin_pct = models.DecimalField(**PCT)
    stock_end = models.IntegerField(null=True, blank=True)
    sell_through_pct = models.DecimalField(**PCT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["item", "date"]
        verbose_name_plural = "product analytics"
        constraints = [models.UniqueConstraint(fields=["item", "date"], name="product_analytics_unique")]
        indexes = [models.Index(fields=["shop", "date"], name="product_analytics_shop_idx")]

    def __str__(self):
        return f"{self.item_id} {self.date}"


class PlatformMetric(models.Model):
    """The whole platform on one UTC day."""

    id = models.BigAutoField(primary_key=True)
    date = models.DateField(unique=True)
    gmv = models.JSONField(default=dict, blank=True)  # {"THB": "1234.00"}: per currency, no conversion
    orders = models.IntegerField(default=0)
    credit_revenue = models.DecimalField(**MONEY)  # in the platform currency only
    # Per currency, no conversion, like gmv: {"THB": "299.00", "INR": "499.00"}.
    credit_revenue_by_currency = models.JSONField(default=dict, blank=True)
    credits_purchased = models.BigIntegerField(default=0)
    credits_consumed = models.BigIntegerField(default=0)
    mrr = models.DecimalField(**MONEY)  # in the platform currency only
    mrr_by_currency = models.JSONField(default=dict, blank=True)  # users' and shops' plans, per currency
    arr = models.DecimalField(**MONEY)
    mrr_users = models.DecimalField(**MONEY)
    mrr_shops = models.DecimalField(**MONEY)
    new_users = models.IntegerField(default=0)
    active_users = models.IntegerField(default=0)
    active_shops = models.IntegerField(default=0)
    plan_distribution = models.JSONField(default=dict, blank=True)  # {"users": {…}, "shops": {…}}
    churned_subscriptions = models.IntegerField(default=0)
    churn_rate = models.DecimalField(**PCT)
    jobs_created = models.IntegerField(default=0)
    jobs_completed = models.IntegerField(default=0)
    jobs_failed = models.IntegerField(default=0)
    conversations = models.IntegerField(default=0)
    messages = models.IntegerField(default=0)
    ai_messages = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["date"]

    def __str__(self):
        return str(self.date)


class ErrorLog(UUIDModel):
    """A group of errors sharing a fingerprint: client reports (`POST /api/errors`, category
    `client`) and the server's own failures (config.failures.failure_report: import, export,
    payment, email, channel, schedule), with what they concern and the staff's resolution."""

    class Category(models.TextChoices):
        CLIENT = "client", "Client report"
        IMPORT = "import", "Model import"
        EXPORT = "export", "Model export"
        PAYMENT = "payment", "Payment"
        EMAIL = "email", "Email"
        CHANNEL = "channel", "Channel delivery"
        SCHEDULE = "schedule", "Schedule"
        JOB = "job", "Job"
        OTHER = "other", "Other"

    class Severity(models.TextChoices):
        DEBUG = "debug", "Debug"
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"
        CRITICAL = "critical", "Critical"

    fingerprint = models.CharField(max_length=64, unique=True)
    message = models.TextField(max_length=2000)
    stack = models.TextField(blank=True, default="", max_length=20000)
    url = models.CharField(max_length=2000, blank=True, default="")
    user_agent = models.CharField(max_length=500, blank=True, default="")
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.ERROR)
    context = models.JSONField(default=dict, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    occurrences = models.PositiveIntegerField(default=1)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Database defaults: the error log's upsert (analytics.services.errors) writes raw SQL.
    resolution = models.TextField(blank=True, default="", db_default="", max_length=4000)
    category = models.CharField(
        max_length=16, choices=Category.choices, default=Category.CLIENT, db_default=Category.CLIENT
    )
    error_code = models.CharField(max_length=64, blank=True, default="", db_default="")
    operation = models.CharField(max_length=100, blank=True, default="", db_default="")
    step = models.CharField(max_length=100, blank=True, default="", db_default="")
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    payment = models.ForeignKey(
        "credits.Payment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    project = models.ForeignKey(
        "jobs.Project",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )

    class Meta:
        ordering = ["-last_seen", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(severity__in=["debug", "info", "warning", "error", "critical"]),
                name="error_log_severity_valid",
            ),
            models.CheckConstraint(condition=Q(occurrences__gte=1), name="error_log_occurrences_positive"),
            models.CheckConstraint(
                condition=Q(category__in=["client", "import", "export", "payment", "email", "channel"])
                | Q(category__in=["schedule", "job", "other"]),
                name="error_log_category_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["resolved_at", "-last_seen"], name="error_log_open_idx"),
            models.Index(fields=["category", "-last_seen"], name="error_log_category_idx"),
        ]

    def __str__(self):
        return f"{self.severity}: {self.message[:60]}"
