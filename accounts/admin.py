from urllib.parse import urlencode

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from accounts import services
from accounts.models import (
    API_KEY_SCOPES,
    License,
    ServiceApiKey,
    Subscription,
    SubscriptionPlan,
    User,
    UserPreferences,
)
from config.admin_tools import key_value_table
from config.exceptions import ApplicationError, InvalidTransition


class LicenseInline(admin.StackedInline):
    model = License
    extra = 0
    can_delete = False
    # The type and status move only through license_transition (the actions on the license list)
    # and billing; the dates stay editable (a trial extended by staff).
    readonly_fields = ["type", "status"]


class PreferencesInline(admin.StackedInline):
    model = UserPreferences
    extra = 0
    can_delete = False
    fields = ["readable", "video_defaults", "notifications", "ui"]
    readonly_fields = ["readable"]

    @admin.display(description="preferences")
    def readable(self, obj):
        return preferences_table(obj)


def preferences_table(obj):
    return key_value_table(
        {"video defaults": obj.video_defaults, "notifications": obj.notifications, "ui": obj.ui}
    )


# Who may grant or adjust credits (the credits app's operation, linked from the user page).
GRANT_PERMISSION = "credits.grant_credits"
GRANTABLE = {"balance": "balance_and_grant"}


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["-created_at"]
    list_display = [
        "email",
        "name",
        "tier",
        "models_used",
        "model_limit",
        "is_active",
        "is_staff",
        "deleted_at",
        "date_joined",
    ]
    list_filter = ["tier", "is_active", "is_staff", "country", "industry", "date_joined"]
    search_fields = ["email", "name", "organization", "phone_number"]
    readonly_fields = [
        "id",
        "date_joined",
        "last_login",
        "created_at",
        "updated_at",
        "time_spent",
        "max_step_reached",
        "last_session_final_step",
        "deleted_at",
        # Plan fields change only through subscription_transition (tier, model limit) and
        # user_models_used_change (models used): the subscription page's actions, billing, jobs.
        "tier",
        "model_limit",
        "models_used",
        "balance",
        "balance_and_grant",
        "license_summary",
        "subscription_summary",
        "related_links",
    ]
    date_hierarchy = "date_joined"
    inlines = [LicenseInline, PreferencesInline]
    fieldsets = (
        (None, {"fields": ("id", "email", "password")}),
        ("Account", {"fields": ("balance", "license_summary", "subscription_summary", "related_links")}),
        ("Profile", {"fields": ("name", "phone_number", "organization", "job_title", "country", "industry")}),
        ("Plan", {"fields": ("tier", "model_limit", "models_used")}),
        ("Progress", {"fields": ("time_spent", "max_step_reached", "last_session_final_step")}),
        (
            "Access",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions", "deleted_at")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined", "created_at", "updated_at")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2", "name")}),)

    def get_queryset(self, request):
        # The user page's overview reads the balance and the license: fetched with the user.
        return super().get_queryset(request).select_related("credit_balance", "license")

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not request.user.has_perm(GRANT_PERMISSION):
            return fieldsets
        # Staff who may grant credits get the button beside the balance; the others do not see
        # a button that would only lead to a refusal.
        return [
            (name, {**options, "fields": [GRANTABLE.get(f, f) for f in options["fields"]]})
            for name, options in fieldsets
        ]

    @admin.display(description="credit balance")
    def balance(self, obj):
        balance = getattr(obj, "credit_balance", None)
        value = balance.balance if balance is not None else 0
        return format_html('<strong id="user-balance">{}</strong> credits', value)

    @admin.display(description="credit balance")
    def balance_and_grant(self, obj):
        grant = reverse("admin:credits_creditaccount_grant", args=[obj.pk])
        return format_html(
            '{} &nbsp; <a href="{}" id="grant-credits-link" class="button">Grant or adjust credits</a>',
            self.balance(obj),
            grant,
        )

    @admin.display(description="license")
    def license_summary(self, obj):
        license = getattr(obj, "license", None)
        if license is None:
            return "none"
        return format_html(
            '<span id="user-license">{} · {} · expires {}</span>',
            license.get_type_display(),
            license.get_status_display(),
            date_format(license.date_end, "DATETIME_FORMAT"),
        )

    @admin.display(description="subscription")
    def subscription_summary(self, obj):
        sub = Subscription.objects.filter(user=obj).order_by("-start_date").first()
        if sub is None:
            return format_html('<span id="user-subscription">{}</span>', "none")
        return format_html(
            '<span id="user-subscription"><a href="{}">{} · {} · {} {} {} · until {}{}</a></span>',
            reverse("admin:accounts_subscription_change", args=[sub.pk]),
            sub.get_tier_display(),
            sub.get_status_display(),
            sub.amount,
            sub.currency,
            sub.get_billing_cycle_display(),
            date_format(sub.end_date, "DATETIME_FORMAT"),
            " · auto-renews" if sub.auto_renew else "",
        )

    @admin.display(description="records")
    def related_links(self, obj):
        """The user's rows in other lists: each changelist filtered by this user."""
        links = [
            ("user-ledger-link", "credits_credittransaction", "user__id__exact", "Credit ledger"),
            ("user-payments-link", "credits_payment", "user__id__exact", "Payments"),
            ("user-jobs-link", "jobs_job", "user__id__exact", "Jobs"),
            ("user-shops-link", "shops_shop", "owner__id__exact", "Shops owned"),
        ]
        return format_html_join(
            " · ",
            '<a id="{}" href="{}?{}">{}</a>',
            (
                (link_id, reverse(f"admin:{name}_changelist"), urlencode({lookup: obj.pk}), label)
                for link_id, name, lookup, label in links
            ),
        )

    actions = ["soft_delete_users"]

    def has_delete_permission(self, request, obj=None):
        # A user is soft-deleted (the ledger, payments and orders they own stay): the list action.
        return False

    @admin.action(
        description="Soft-delete selected users (they can no longer log in)", permissions=["change"]
    )
    def soft_delete_users(self, request, queryset):
        done = 0
        for user in queryset.filter(deleted_at__isnull=True).order_by("pk"):
            services.user_soft_delete(user=user)
            self.log_change(request, user, "Soft-deleted (list action).")
            done += 1
        self.message_user(request, f"Soft-deleted {done} user(s).", messages.SUCCESS)

    def get_inlines(self, request, obj):
        # The rows behind the inlines are created with the user (save_related), not typed in.
        return self.inlines if obj is not None else []

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if not change:
            services.user_ensure_profile(user=form.instance)


@admin.register(License)
class LicenseAdmin(admin.ModelAdmin):
    """Licenses. The status is read-only: staff suspend, reinstate or cancel a license with the
    list actions, which call `license_transition` (the database refuses any other status write)
    and write the admin history."""

    list_display = ["user", "type", "status", "date_start", "date_end"]
    list_filter = ["type", "status", "date_end"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["user", "type", "status"]
    actions = ["suspend_licenses", "reinstate_licenses", "cancel_licenses"]

    def has_add_permission(self, request):
        return False  # every user gets one when created (user_ensure_profile)

    def has_delete_permission(self, request, obj=None):
        return False

    def _each(self, request, queryset, to: str, verb: str):
        done = 0
        for license in queryset.select_related("user").order_by("pk"):
            before = license.status
            try:
                services.license_transition(license=license, to=to)
            except ApplicationError as exc:
                self.message_user(request, f"{license.user}: {exc.message}", messages.WARNING)
            else:
                self.log_change(request, license, f"License {before} → {to} (list action).")
                done += 1
        self.message_user(request, f"{verb} {done} license(s).", messages.SUCCESS)

    @admin.action(description="Suspend selected licenses (new jobs are refused)", permissions=["change"])
    def suspend_licenses(self, request, queryset):
        self._each(request, queryset, License.Status.SUSPENDED, "Suspended")

    @admin.action(description="Reinstate selected licenses (back to active)", permissions=["change"])
    def reinstate_licenses(self, request, queryset):
        self._each(request, queryset, License.Status.ACTIVE, "Reinstated")

    @admin.action(description="Cancel selected licenses", permissions=["change"])
    def cancel_licenses(self, request, queryset):
        self._each(request, queryset, License.Status.CANCELLED, "Cancelled")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    """Subscriptions, read-only: they are opened and extended by payments
    (`subscription_activate`) and move only through `subscription_transition` — the list
    actions below, billing and the daily task — which also moves the user's tier and limit."""

    list_display = [
        "user",
        "tier",
        "status",
        "billing_cycle",
        "amount",
        "currency",
        "start_date",
        "end_date",
        "auto_renew",
    ]
    list_filter = ["tier", "status", "billing_cycle", "auto_renew", "currency"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    date_hierarchy = "start_date"
    actions = ["cancel_at_period_end", "end_now", "expire_now"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _each(self, request, queryset, verb: str, move):
        done = 0
        for sub in queryset.select_related("user").order_by("pk"):
            before = sub.status
            try:
                with transaction.atomic():
                    after = move(sub)
                    message = f"Subscription {before} → {after.status}: {verb} (list action)."
                    self.log_change(request, sub, message)
            except ApplicationError as exc:
                self.message_user(request, f"{sub.user}: {exc.message}", messages.WARNING)
            else:
                done += 1
        self.message_user(request, f"{verb.capitalize()}: {done} subscription(s).", messages.SUCCESS)

    @admin.action(
        description="Stop renewing selected subscriptions (end at period end)", permissions=["change"]
    )
    def cancel_at_period_end(self, request, queryset):
        def move(sub):
            live = services.subscription_lock_live(sub.user_id)
            if live is None or live.pk != sub.pk:
                raise InvalidTransition("This is not the user's live subscription.")
            return services.subscription_cancel(user=sub.user)

        self._each(request, queryset, "stopped renewing", move)

    @admin.action(
        description="Cancel selected subscriptions now (user drops to free)", permissions=["change"]
    )
    def end_now(self, request, queryset):
        self._each(
            request,
            queryset,
            "cancelled now",
            lambda sub: services.subscription_transition(subscription=sub, to=Subscription.Status.CANCELLED),
        )

    @admin.action(
        description="Expire selected subscriptions now (user drops to free)", permissions=["change"]
    )
    def expire_now(self, request, queryset):
        self._each(
            request,
            queryset,
            "expired now",
            lambda sub: services.subscription_transition(subscription=sub, to=Subscription.Status.EXPIRED),
        )


@admin.register(UserPreferences)
class UserPreferencesAdmin(admin.ModelAdmin):
    fields = ["user", "readable", "video_defaults", "notifications", "ui"]
    readonly_fields = ["readable"]
    list_display = ["user", "updated_at"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]

    @admin.display(description="preferences")
    def readable(self, obj):
        return preferences_table(obj) if obj.pk else "—"


admin.site.unregister(APIKey)
# Social login is configured by settings (SOCIALACCOUNT_PROVIDERS), not by rows in allauth's
# tables, and its links are made only by signing in: allauth's own admin pages are not offered.
admin.site.unregister([EmailAddress, SocialApp, SocialAccount, SocialToken])


class ServiceApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in API_KEY_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="What the key may do: " + ", ".join(API_KEY_SCOPES) + ".",
    )

    class Meta:
        model = ServiceApiKey
        fields = ["name", "scopes", "expiry_date", "revoked"]


@admin.register(ServiceApiKey)
class ServiceApiKeyAdmin(APIKeyModelAdmin):
    """Shows only the prefix; the key itself is never stored, so it cannot be shown."""

    form = ServiceApiKeyForm

    list_display = ["prefix", "name", "scopes", "created", "last_used_at", "expiry_date", "revoked"]
    list_filter = ["revoked", "created"]
    search_fields = ["prefix", "name"]
    fields = ["name", "scopes", "prefix", "expiry_date", "revoked", "created", "last_used_at"]

    def get_readonly_fields(self, request, obj=None):
        # The base class returns its own tuple and would drop ours; `created` is not editable,
        # so leaving it out of the read-only list makes the change form crash.
        return (*super().get_readonly_fields(request, obj), "created", "last_used_at")


@admin.register(SubscriptionPlan)
class SubscriptionPlanAdmin(admin.ModelAdmin):
    """Plans are edited here; a change applies to payments opened after it."""

    list_display = ["code", "name", "billing_cycle", "price", "currency", "model_limit", "is_active"]
    list_filter = ["billing_cycle", "is_active"]
    search_fields = ["code", "name"]
