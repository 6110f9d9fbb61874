"""The error log holds the server's own failures (import, export, payment, email, schedule) with
category, error code, operation, step and links, grouped by fingerprint; the LOW…CRITICAL
severities are accepted and mapped; staff record a resolution in the admin."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.emails import email_send
from accounts.models import User
from analytics.models import ErrorLog
from config.failures import failure_report
from config.scheduled import scheduled_run
from jobs import services
from jobs.models import Project
from tests.conftest import assert_error
from tests.credits.conftest import seeded_package  # noqa: F401  (fixture)
from tests.credits.test_providers import (  # noqa: F401  (_keys, remote: fixtures)
    STRIPE_SESSIONS,
    _keys,
    buy,
    remote,
)
from tests.factories import admin_login
from tests.jobs.model_helpers import run_all

pytestmark = pytest.mark.django_db


def test_a_corrupt_import_is_logged_once_per_kind_of_failure_with_its_job_and_user(user):
    # given two corrupt uploads failing the same way
    jobs = [
        services.job_create(
            user=user,
            kind_code="model_import",
            input_file=SimpleUploadedFile(f"b{i}.stl", b"solid x\nnope\n"),
        )
        for i in range(2)
    ]
    # when the engine runs them
    assert run_all() == ["failed", "failed"]
    # then one group, two occurrences, pointing at the last job and its owner
    (group,) = ErrorLog.objects.filter(category="import")
    assert (group.category, group.operation, group.error_code) == (
        "import",
        "model_import",
        "permanent_error",
    )
    assert group.step == "attempt 1" and group.occurrences == 2 and group.severity == "error"
    assert group.user_id == user.pk and group.job_id in {j.pk for j in jobs}
    assert group.message.startswith("The model file could not be read")


def test_a_refused_payment_is_logged_with_the_payment(auth_client, user, seeded_package, remote):  # noqa: F811
    remote.post(
        STRIPE_SESSIONS, status=400, json={"error": {"type": "invalid_request_error", "code": "bad_cur"}}
    )
    assert_error(buy(auth_client, seeded_package("Popular Pack"), "stripe"), 502, "provider_error")
    (group,) = ErrorLog.objects.filter(category="payment")
    assert (group.category, group.operation, group.step) == (
        "payment",
        "stripe.checkout",
        "checkout.sessions.create",
    )
    assert group.error_code == "bad_cur" and group.severity == "error" and group.user_id == user.pk
    assert group.payment_id is not None


def test_an_email_that_cannot_be_sent_is_logged(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    with pytest.raises(OSError):
        email_send(template="password_reset", to=["a@example.com"], context={})
    (group,) = ErrorLog.objects.filter(category="email")
    assert (group.category, group.operation, group.step) == ("email", "email.password_reset", "send")


def test_a_failed_schedule_is_logged_as_critical_enough():
    with pytest.raises(RuntimeError), scheduled_run("analytics.generate_daily", period_key="2026-11-30"):
        raise RuntimeError("boom")
    (group,) = ErrorLog.objects.filter(category="schedule")
    assert (group.category, group.operation, group.step, group.error_code) == (
        "schedule",
        "analytics.generate_daily",
        "2026-11-30",
        "RuntimeError",
    )
    assert group.severity == "error"  # HIGH maps to error


def test_the_same_message_from_two_operations_is_two_groups_and_links_a_project(user):
    project = Project.objects.create(user=user, name="P")
    for operation in ("line.push", "messenger.send", "line.push"):
        failure_report(
            category="channel", operation=operation, message="Delivery refused", project_id=project.pk
        )
    groups = {g.operation: g for g in ErrorLog.objects.filter(category="channel")}
    assert set(groups) == {"line.push", "messenger.send"}
    assert groups["line.push"].occurrences == 2 and groups["line.push"].project_id == project.pk


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("LOW", "info"),
        ("MEDIUM", "warning"),
        ("HIGH", "error"),
        ("CRITICAL", "critical"),
        ("warning", "warning"),
    ],
)
def test_client_reports_accept_the_upper_case_severities(api_client, given, stored):
    response = api_client.post("/api/errors", {"message": f"m {given}", "severity": given}, format="json")
    assert response.status_code in (200, 201), response.content
    assert ErrorLog.objects.get(message=f"m {given}").severity == stored


@pytest.mark.parametrize("severity", ["SEVERE", "", 3, None])
def test_an_unknown_severity_is_a_400(api_client, severity):
    response = api_client.post("/api/errors", {"message": "m", "severity": severity}, format="json")
    assert_error(response, 400, "validation_error")
    assert not ErrorLog.objects.filter(category="client").exists()


def test_staff_record_a_resolution_in_the_admin():
    failure_report(category="export", operation="model_export", message="Could not convert")
    group = ErrorLog.objects.get(category="export")
    superuser = User.objects.create_superuser("root@example.com", "Admin-Console-Pass-7")
    client = Client()
    admin_login(client, superuser)
    url = reverse("admin:analytics_errorlog_change", args=[group.pk])
    response = client.post(url, {"resolution": "Fixed the PLY writer; re-ran the exports."})
    assert response.status_code == 302, response.content[:500]
    group.refresh_from_db()
    assert group.resolution == "Fixed the PLY writer; re-ran the exports."
    assert group.resolved_at is not None and group.resolved_by == superuser
