from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from accounts import services
from accounts.models import License, ServiceApiKey, Subscription, SubscriptionPlan, User, UserPreferences


class LicenseInline(admin.StackedInline):
    model = License
    extra = 0
    can_delete = False


class PreferencesInline(admin.StackedInline):
    model = UserPreferences
    extra = 0
    can_delete = False


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
    ]
    date_hierarchy = "date_joined"
    inlines = [LicenseInline, PreferencesInline]
    fieldsets = (
        (None, {"fields": ("id", "email", "password")}),
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

    def get_inlines(self, request, obj):
        # The rows behind the inlines are created with the user (save_related), not typed in.
        return self.inlines if obj is not None else []

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if not change:
            services.user_ensure_profile(user=form.instance)


@admin.register(License)
class LicenseAdmin(admin.ModelAdmin):
    list_display = ["user", "type", "status", "date_start", "date_end"]
    list_filter = ["type", "status", "date_end"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
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
    raw_id_fields = ["user"]
    date_hierarchy = "start_date"


@admin.register(UserPreferences)
class UserPreferencesAdmin(admin.ModelAdmin):
    list_display = ["user", "updated_at"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]


admin.site.unregister(APIKey)


@admin.register(ServiceApiKey)
class ServiceApiKeyAdmin(APIKeyModelAdmin):
    """Shows only the prefix; the key itself is never stored, so it cannot be shown."""

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
    """Plans are edited here; a change applies to payments opened after it (SPEC §12)."""

    list_display = ["code", "name", "billing_cycle", "price", "currency", "model_limit", "is_active"]
    list_filter = ["billing_cycle", "is_active"]
    search_fields = ["code", "name"]
