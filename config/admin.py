"""Admin building blocks shared by the apps, and the platform's own tables."""

from django.contrib import admin

from config.models import ScheduledRun


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable, never addable, changeable or deletable, whoever is logged in (ledgers, logs).

    Admin actions still work: they call services, which are the only writers.
    """

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ScheduledRun)
class ScheduledRunAdmin(ReadOnlyAdmin):
    """When each schedule last ran and what it did."""

    list_display = ("task", "period_key", "outcome", "started_at", "finished_at", "duration", "attempts")
    list_filter = ("outcome", "task")
    search_fields = ("task", "period_key")
    date_hierarchy = "started_at"
    readonly_fields = (
        "task",
        "period_key",
        "outcome",
        "started_at",
        "finished_at",
        "attempts",
        "counts",
        "error",
        "created_at",
        "updated_at",
    )
