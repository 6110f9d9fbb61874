from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class ConsoleConfig(AppConfig):
    """The admin console: the one app that reads every other (the dashboard), so it sits above
    them all in the layers (docs/ARCHITECTURE.md, "Layers"). It has no models."""

    name = "console"
    verbose_name = "Admin console"


class AdminConfig(DjangoAdminConfig):
    """django.contrib.admin with our site (console.admin_site.AdminSite: the dashboard)."""

    default_site = "console.admin_site.AdminSite"
