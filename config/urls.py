from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import exceptions, health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("console.urls")),  # /metrics (Prometheus, bearer token only)
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/", include("accounts.urls")),
    path("api/", include("credits.urls")),
    path("api/", include("jobs.urls")),
    path("api/", include("shops.urls")),
    path("api/", include("analytics.urls")),
    path("api/", include("backups.urls")),
    # Social login: django-allauth's headless API, app client (accounts/social.py). Its answers
    # are allauth's own JSON ({"status", "data", "meta", "errors"}), not our error envelope.
    path("_allauth/", include("accounts.social_urls")),
    # Last: any other path is the JSON 404 envelope, also with DEBUG on (where Django would
    # otherwise answer its HTML technical 404 page), for every method: CSRF-exempt, since it
    # changes nothing, so an unsafe method is not a 403 `csrf_failed` for a path that is not there.
    re_path(r"^", csrf_exempt(exceptions.json_404), name="not-found"),
]

handler400 = "config.exceptions.json_400"
handler403 = "config.exceptions.json_403"
handler404 = "config.exceptions.json_404"
handler500 = "config.exceptions.json_500"
