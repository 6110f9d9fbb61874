"""Admin building blocks shared by the apps (a plain module: config is not an app)."""

from django.contrib import admin


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
