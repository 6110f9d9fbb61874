import calendar
from datetime import timedelta

from django.contrib.auth.hashers import check_password, is_password_usable
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey

from config.models import UUIDModel
from config.status_guard import status_guard

FREE_MODEL_LIMIT = 5
TRIAL_DAYS = 30
# A past-due subscription keeps its tier this long after the failed payment.
SUBSCRIPTION_GRACE_DAYS = 3
# The transaction-local settings through which `license_transition` and
# `subscription_transition` authorise their one status write (accounts/states.py; the guard
# triggers on License and Subscription read them).
LICENSE_STATUS_SETTING = "accounts.license_transition"
SUBSCRIPTION_STATUS_SETTING = "accounts.subscription_transition"
# What a service API key may be allowed to do; views name one in `required_scope`.
API_KEY_SCOPES = ("jobs:write", "jobs:read", "jobs:work", "shops:inbound")


class Tier(models.TextChoices):
    FREE = "free", "Free"
    PREMIUM = "premium", "Premium"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def normalize_email(self, email):
        return (email or "").strip().lower()

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)

    def create_user(self, email, password=None, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self.db)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(UUIDModel, AbstractBaseUser, PermissionsMixin):
    """A person who logs in with their email address.

    Soft delete: `deleted_at` is set and `is_active` cleared, so the account can no longer
    authenticate while every row that points at it (ledger, jobs, shops) stays intact.
    """

    email = models.EmailField(max_length=254, unique=True)
    name = models.CharField(max_length=150, blank=True)
    phone_number = models.CharField(max_length=32, blank=True)
    organization = models.CharField(max_length=150, blank=True)
    # For tax invoices: the buyer's tax id (a Thai business's 13 digits) and address, optional.
    tax_id = models.CharField(max_length=32, blank=True)
    billing_address = models.CharField(max_length=500, blank=True)
    job_title = models.CharField(max_length=150, blank=True)
    country = models.CharField(max_length=100, blank=True)
    industry = models.CharField(max_length=100, blank=True)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.FREE)
    model_limit = models.PositiveIntegerField(default=FREE_MODEL_LIMIT)
    models_used = models.PositiveIntegerField(default=0)
    time_spent = models.PositiveBigIntegerField(default=0, help_text="Seconds spent in the app.")
    max_step_reached = models.PositiveIntegerField(default=0)
    last_session_final_step = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    # When the password last changed: JWTs issued before it are refused
    # (accounts.authentication.token_predates_password). Null: never changed since this existed.
    password_changed_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
            models.CheckConstraint(condition=models.Q(models_used__gte=0), name="user_models_used_gte_0"),
        ]

    def __str__(self):
        return self.email

    def clean(self):
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email)

    def set_password(self, raw_password):
        """Set the password, and stamp `password_changed_at` when it replaces another usable
        password (a first password, at sign-up or after a social login, replaces none; a hasher
        upgrade on login re-hashes the same password and ends nothing). Whoever saves with
        update_fields naming "password" saves the stamp too."""
        replaces = (
            bool(self.password)
            and is_password_usable(self.password)
            and not (raw_password is not None and check_password(raw_password, self.password))
        )
        super().set_password(raw_password)
        if replaces:
            self.password_changed_at = timezone.now()

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "password" in update_fields:
            kwargs["update_fields"] = {*update_fields, "password_changed_at"}
        super().save(*args, **kwargs)

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


def default_video_defaults():
    return {"resolution": "1080p", "fps": 30, "format": "mp4"}


def default_notifications():
    return {"email": True, "push": False, "job_finished": True, "marketing": False}


def default_ui():
    return {"theme": "system", "language": "en"}


class UserPreferences(UUIDModel):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="preferences")
    video_defaults = models.JSONField(default=default_video_defaults)
    notifications = models.JSONField(default=default_notifications)
    ui = models.JSONField(default=default_ui)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "user preferences"

    def __str__(self):
        return f"Preferences of {self.user}"


class License(UUIDModel):
    """A user's license. `status` moves only through
    `accounts.services.license_transition` (the table is in accounts/states.py; a trigger refuses
    any other write)."""

    class Type(models.TextChoices):
        TRIAL = "trial", "Trial"
        PAID = "paid", "Paid"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"
        SUSPENDED = "suspended", "Suspended"
        CANCELLED = "cancelled", "Cancelled"

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="license")
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.TRIAL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    date_start = models.DateTimeField(default=timezone.now)
    date_end = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "date_end"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(date_end__gt=models.F("date_start")), name="license_end_after_start"
            ),
        ]
        triggers = [
            status_guard(
                name="license_status_guard",
                setting=LICENSE_STATUS_SETTING,
                writer="accounts.services.license_transition",
            ),
        ]

    def __str__(self):
        return f"{self.get_type_display()} license of {self.user} ({self.status})"

    @classmethod
    def trial_end(cls, start):
        return start + timedelta(days=TRIAL_DAYS)


class BillingCycle(models.TextChoices):
    MONTHLY = "monthly", "Monthly"
    YEARLY = "yearly", "Yearly"


class SubscriptionPlan(UUIDModel):
    """What a subscription sells: seeded `premium_monthly` and `premium_yearly` (THB),
    editable in the admin. A subscription copies the plan's price, cycle and model limit when a
    payment for it succeeds, so later edits never change a period already paid for."""

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.PREMIUM)
    billing_cycle = models.CharField(max_length=16, choices=BillingCycle.choices)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="THB")
    model_limit = models.PositiveIntegerField()
    is_active = models.BooleanField(default=True, db_index=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "price", "code"]
        constraints = [
            # A plan is paid through a provider; a free "plan" is the free tier, not a plan.
            models.CheckConstraint(condition=models.Q(price__gt=0), name="subscriptionplan_price_gt_0"),
            models.CheckConstraint(
                condition=models.Q(model_limit__gte=FREE_MODEL_LIMIT), name="subscriptionplan_limit_gte_free"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.price} {self.currency} {self.billing_cycle})"

    def period_end(self, start):
        """The end of one billing period that starts at `start` (calendar months, clamped)."""
        months = 12 if self.billing_cycle == BillingCycle.YEARLY else 1
        return add_months(start, months)


def add_months(moment, months: int):
    """`moment` plus whole calendar months; the 31st of a short month becomes its last day."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


class Subscription(UUIDModel):
    """A user's premium subscription. Only `accounts.services.subscription_transition` changes
    `status` (the table is in accounts/states.py; a trigger refuses any other write); at most
    one subscription per user is live (`active` or `past_due`), which the database holds with a
    partial unique index.

    Cancelling is at period end: `auto_renew` goes off and `cancelled_at` is set while the status
    stays `active` until `end_date`, when the daily task moves it to `cancelled`."""

    LIVE_STATUSES = ("active", "past_due")

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"

    BillingCycle = BillingCycle

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="subscriptions")
    plan = models.ForeignKey(
        SubscriptionPlan, on_delete=models.PROTECT, null=True, blank=True, related_name="subscriptions"
    )
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.PREMIUM)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    billing_cycle = models.CharField(
        max_length=16, choices=BillingCycle.choices, default=BillingCycle.MONTHLY
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="THB")
    model_limit = models.PositiveIntegerField(default=100)
    start_date = models.DateTimeField(default=timezone.now)
    end_date = models.DateTimeField()
    next_billing_date = models.DateTimeField(null=True, blank=True)
    auto_renew = models.BooleanField(default=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    past_due_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-start_date"]
        indexes = [models.Index(fields=["status", "end_date"]), models.Index(fields=["user", "status"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="subscription_amount_gte_0"),
            models.CheckConstraint(
                condition=models.Q(end_date__gt=models.F("start_date")), name="subscription_end_after_start"
            ),
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(status__in=["active", "past_due"]),
                name="subscription_one_live_per_user",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="past_due") | models.Q(past_due_since__isnull=False),
                name="subscription_past_due_has_since",
            ),
        ]
        triggers = [
            status_guard(
                name="subscription_status_guard",
                setting=SUBSCRIPTION_STATUS_SETTING,
                writer="accounts.services.subscription_transition",
            ),
        ]

    def __str__(self):
        return f"{self.tier} subscription of {self.user} ({self.status})"

    @property
    def cancel_at_period_end(self) -> bool:
        return self.cancelled_at is not None and self.status in self.LIVE_STATUSES


class ServiceApiKey(AbstractAPIKey):
    """A key for machine callers (external job workers). Only a hash and its prefix are stored."""

    scopes = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    # With scope jobs:work, the job kind codes this key may claim and report (empty: every kind
    # run by external workers). Codes, not foreign keys: job kinds live in a layer above.
    job_kinds = ArrayField(
        models.CharField(max_length=64),
        default=list,
        blank=True,
        help_text="Job kind codes a worker key may work on (empty: every worker kind).",
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "service API key"
        verbose_name_plural = "service API keys"

    def clean(self):
        super().clean()
        unknown = sorted(set(self.scopes or []) - set(API_KEY_SCOPES))
        if unknown:
            raise ValidationError(
                {"scopes": f"Unknown scopes: {', '.join(unknown)}. Known: {', '.join(API_KEY_SCOPES)}."}
            )

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def may_work_on(self, kind_code: str) -> bool:
        return not self.job_kinds or kind_code in self.job_kinds
