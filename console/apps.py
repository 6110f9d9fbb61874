from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class ConsoleConfig(AppConfig):
    """The admin console: the one app that reads every other (the dashboard), so it sits above
    them all in the layers (docs/ARCHITECTURE.md, "Layers"). It has no models."""

    name = "console"
    verbose_name = "Admin console"

    def ready(self):
        from django.db.models.signals import post_migrate

        from console.roles import sync_after_migrate

        # The staff role groups (console/roles.py), after every migrate.
        post_migrate.connect(sync_after_migrate, dispatch_uid="console.staff_groups_sync")


class AdminConfig(DjangoAdminConfig):
    """django.contrib.admin with our site (console.admin_site.AdminSite: the dashboard)."""

    default_site = "console.admin_site.AdminSite"
