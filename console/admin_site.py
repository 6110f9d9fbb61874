"""The admin site: Django's, with the dashboard on its index.

Installed through `console.apps.AdminConfig.default_site`, so every app's `admin.site.register`
and `@admin.register` land here unchanged.
"""

from django.conf import settings
from django.contrib import admin

from config.replicas import replica_reads
from console.dashboard import admin_dashboard

DASHBOARD_PERMISSION = "analytics.view_platformmetric"


class AdminSite(admin.AdminSite):
    site_header = f"{settings.SITE_NAME} admin"
    site_title = f"{settings.SITE_NAME} admin"
    index_title = "Dashboard"

    def __init__(self, name="admin"):
        super().__init__(name)
        # "View site" leads to the product (the web app), not to this API host's JSON 404.
        self.site_url = f"{settings.FRONTEND_URL}/"

    def index(self, request, extra_context=None):
        """The app list, and for staff who may read the platform metrics, the dashboard."""
        context = dict(extra_context or {})
        if request.user.has_perm(DASHBOARD_PERMISSION):
            with replica_reads(request):
                context["dashboard"] = admin_dashboard()
        return super().index(request, context)
