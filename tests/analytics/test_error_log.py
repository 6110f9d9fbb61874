"""ErrorLog: fingerprint grouping under concurrency, resolving in the admin, reopening."""

import threading

import pytest
from django.db import connection
from django.urls import reverse

from analytics.models import ErrorLog
from analytics.services import error_log_record
from analytics.services.errors import error_fingerprint
from tests.factories import UserFactory, admin_login


def test_fingerprint_ignores_numbers_ids_and_frames_below_the_top_three():
    a = error_fingerprint(message="Order 123 failed", stack="at a (x.js:1:2)\nat b (y.js:3:4)\nat c\nat d")
    b = error_fingerprint(
        message="Order 9 failed", stack="at a (x.js:10:20)\nat b (y.js:3:9)\nat c\nat other"
    )
    assert a == b
    assert a != error_fingerprint(message="Order 9 failed", stack="at z (x.js:1:2)")


@pytest.mark.django_db(transaction=True)
def test_concurrent_reports_of_one_error_count_every_occurrence():
    errors = []

    def report():
        try:
            error_log_record(message="TypeError: boom", stack="at f (a.js:1:1)")
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=report) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    log = ErrorLog.objects.get()
    assert log.occurrences == 8


@pytest.mark.django_db
def test_staff_resolve_in_the_admin_and_a_new_occurrence_reopens(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    log = error_log_record(message="boom")
    admin_login(client, staff)
    response = client.post(
        reverse("admin:analytics_errorlog_changelist"),
        {"action": "resolve", "_selected_action": [str(log.pk)]},
    )
    assert response.status_code == 302
    log.refresh_from_db()
    assert log.resolved_at is not None and log.resolved_by == staff
    assert client.get(reverse("admin:analytics_errorlog_change", args=[log.pk])).status_code == 200
    error_log_record(message="boom")
    log.refresh_from_db()
    assert log.resolved_at is None and log.occurrences == 2
