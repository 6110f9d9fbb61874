"""The admin site: Django's, with the dashboard on its index and a TOTP second factor.

Installed through `console.apps.AdminConfig.default_site`, so every app's `admin.site.register`
and `@admin.register` land here unchanged.

Second factor (django-otp): a staff member who typed the right password is logged in but not
yet *verified*; `has_permission` refuses every admin page until they are, and the login page
sends them to `admin:otp`. There, with a confirmed TOTP device, they type the current code;
without one, the page enrols a new device first (a QR code and the secret to type into an
authenticator app, confirmed by its first code). django-otp's device throttling slows down
guessing (each wrong code doubles the wait), and the admin login itself is throttled by axes.
"""

from base64 import b32encode

import segno
from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from config.replicas import replica_reads
from console.dashboard import admin_dashboard

DASHBOARD_PERMISSION = "analytics.view_platformmetric"
ENROLMENT_DEVICE_NAME = "admin"


class TokenForm(forms.Form):
    token = forms.RegexField(
        regex=r"^\d{6}$",
        max_length=6,
        label="Code",
        error_messages={"invalid": "Type the 6 digits your authenticator app shows."},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class AdminSite(admin.AdminSite):
    site_header = f"{settings.SITE_NAME} admin"
    site_title = f"{settings.SITE_NAME} admin"
    index_title = "Dashboard"

    def __init__(self, name="admin"):
        super().__init__(name)
        # "View site" leads to the product (the web app), not to this API host's JSON 404.
        self.site_url = f"{settings.FRONTEND_URL}/"

    def has_permission(self, request):
        """Active staff who passed the second factor in this session."""
        return super().has_permission(request) and request.user.is_verified()

    def get_urls(self):
        return [path("otp/", never_cache(csrf_protect(self.otp_view)), name="otp"), *super().get_urls()]

    def _next_url(self, request) -> str:
        target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME)
        if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return target
        return reverse("admin:index", current_app=self.name)

    @staticmethod
    def _awaits_second_factor(request) -> bool:
        user = request.user
        return user.is_authenticated and user.is_active and user.is_staff and not user.is_verified()

    def login(self, request, extra_context=None):
        """Django's login; a staff member past the password but not the code goes to the code."""
        if self._awaits_second_factor(request):
            query = request.GET.urlencode()
            url = reverse("admin:otp", current_app=self.name)
            return HttpResponseRedirect(f"{url}?{query}" if query else url)
        return super().login(request, extra_context)

    def otp_view(self, request):
        """Verify the current TOTP code, enrolling a device first when the user has none."""
        if request.user.is_authenticated and request.user.is_verified():
            return HttpResponseRedirect(self._next_url(request))
        if not self._awaits_second_factor(request):
            return HttpResponseRedirect(reverse("admin:login", current_app=self.name))
        user = request.user
        device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("created_at", "id").first()
        enrolling = device is None
        if enrolling:
            device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by(
                "-id"
            ).first() or TOTPDevice.objects.create(user=user, name=ENROLMENT_DEVICE_NAME, confirmed=False)
        form = TokenForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            if device.verify_token(form.cleaned_data["token"]):
                if enrolling:
                    device.confirmed = True
                    device.save(update_fields=["confirmed"])
                otp_login(request, device)
                return HttpResponseRedirect(self._next_url(request))
            form.add_error("token", "That code is not right (or it was already used). Wait for the next one.")
        context = {
            **self.each_context(request),
            "title": "Set up two-factor authentication" if enrolling else "Two-factor authentication",
            "form": form,
            "enrolling": enrolling,
            "next": request.GET.get(REDIRECT_FIELD_NAME, ""),
        }
        if enrolling:
            context["qr_svg"] = segno.make(device.config_url, error="m").svg_inline(scale=4)
            context["secret"] = b32encode(device.bin_key).decode()
        return TemplateResponse(request, "admin/otp.html", context)

    def index(self, request, extra_context=None):
        """The app list, and for staff who may read the platform metrics, the dashboard."""
        context = dict(extra_context or {})
        if request.user.has_perm(DASHBOARD_PERMISSION):
            with replica_reads(request):
                context["dashboard"] = admin_dashboard()
            if context["dashboard"]["missing_days"]:
                queue_metrics_backfill()
        return super().index(request, context)


BACKFILL_QUEUED_KEY = "console:metrics-backfill-queued"
BACKFILL_QUEUED_SECONDS = 300


def queue_metrics_backfill() -> bool:
    """Queue the generation of the days the dashboard found without metrics (a fresh install
    before its first release step or nightly run), at most once per few minutes however many
    staff look. Returns whether it was queued now."""
    from django.core.cache import cache
    from django.db import transaction

    from analytics.tasks import backfill

    if not cache.add(BACKFILL_QUEUED_KEY, True, timeout=BACKFILL_QUEUED_SECONDS):
        return False
    transaction.on_commit(backfill.delay, robust=True)  # a broker outage must not fail the page
    return True
