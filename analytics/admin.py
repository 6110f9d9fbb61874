from django.contrib import admin, messages

from analytics.models import CategoryDailyMetric, DailySalesMetric, ErrorLog, PlatformMetric, ProductAnalytics
from analytics.services.errors import error_log_resolve
from config.admin import ReadOnlyAdmin


@admin.register(DailySalesMetric)
class DailySalesMetricAdmin(ReadOnlyAdmin):
    list_display = [
        "shop",
        "date",
        "orders",
        "gross_revenue",
        "cancelled_revenue",
        "net_revenue",
        "gross_profit",
    ]
    list_filter = [("shop", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["shop__name", "shop__slug"]
    list_select_related = ["shop"]
    date_hierarchy = "date"


@admin.register(CategoryDailyMetric)
class CategoryDailyMetricAdmin(ReadOnlyAdmin):
    list_display = ["shop", "date", "category", "items_sold", "revenue", "profit"]
    list_filter = [("shop", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["shop__name", "category"]
    list_select_related = ["shop"]
    date_hierarchy = "date"


@admin.register(ProductAnalytics)
class ProductAnalyticsAdmin(ReadOnlyAdmin):
    list_display = [
        "item",
        "date",
        "units_sold",
        "revenue",
        "profit",
        "margin_pct",
        "stock_end",
        "sell_through_pct",
    ]
    list_filter = [("shop", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["item__sku", "item__name", "shop__name"]
    list_select_related = ["item"]
    date_hierarchy = "date"


@admin.register(PlatformMetric)
class PlatformMetricAdmin(ReadOnlyAdmin):
    list_display = ["date", "orders", "mrr", "arr", "new_users", "active_users", "active_shops", "churn_rate"]
    date_hierarchy = "date"


@admin.register(ErrorLog)
class ErrorLogAdmin(ReadOnlyAdmin):
    """Every field is read-only but `resolution`: saving one marks the group resolved through
    `error_log_resolve` (a later occurrence reopens it)."""

    list_display = [
        "message",
        "category",
        "operation",
        "error_code",
        "severity",
        "occurrences",
        "last_seen",
        "resolved_at",
    ]
    list_filter = ["category", "severity", ("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["message", "url", "fingerprint", "operation", "error_code"]
    date_hierarchy = "last_seen"
    actions = ["resolve"]
    fields = [
        "message",
        "category",
        "operation",
        "step",
        "error_code",
        "severity",
        "occurrences",
        "first_seen",
        "last_seen",
        "user",
        "job",
        "payment",
        "project",
        "url",
        "user_agent",
        "context",
        "stack",
        "resolved_at",
        "resolved_by",
        "resolution",
    ]

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("analytics.change_errorlog")

    def get_readonly_fields(self, request, obj=None):
        return [name for name in self.fields if name != "resolution"]

    def save_model(self, request, obj, form, change):
        error_log_resolve(
            error_log=obj, user=request.user, resolution=form.cleaned_data.get("resolution", "")
        )

    def has_resolve_permission(self, request):
        # The row is read-only for everyone; resolving it is the one thing staff do to it.
        return request.user.has_perm("analytics.change_errorlog")

    @admin.action(description="Mark resolved (a new occurrence reopens)", permissions=["resolve"])
    def resolve(self, request, queryset):
        done = 0
        for error_log in queryset:
            error_log_resolve(error_log=error_log, user=request.user)
            self.log_change(request, error_log, "Marked resolved (list action).")
            done += 1
        self.message_user(request, f"{done} resolved.", messages.SUCCESS)
