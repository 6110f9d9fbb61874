"""Retry and cancel from a job's page: job_retry / job_cancel (→ job_transition), as the API."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from config.admin_tools import ALREADY_DONE
from credits.selectors import balance_get
from jobs import services
from jobs.models import Job
from tests.admin.helpers import assert_logged, history, page_messages
from tests.factories import admin_login
from tests.jobs.conftest import give_credits

pytestmark = pytest.mark.django_db


def url(job, name):
    return reverse(f"admin:jobs_job_{name}", args=[job.pk])


@pytest.fixture
def queued(user):
    give_credits(user, 100)
    return services.job_create(user=user, kind_code="account_batch", requested_count=3)


def test_job_page_shows_cancel_for_a_running_job_and_retry_for_a_cancelled_one(admin_client, queued):
    page = admin_client.get(reverse("admin:jobs_job_change", args=[queued.pk])).content.decode()
    assert 'id="job-cancel-form"' in page and 'id="job-retry-form"' not in page

    services.job_cancel(job=queued)
    page = admin_client.get(reverse("admin:jobs_job_change", args=[queued.pk])).content.decode()
    assert 'id="job-retry-form"' in page and 'id="job-cancel-form"' not in page


def test_cancel_from_the_job_page_refunds_and_is_logged(admin_client, superuser, user, queued):
    assert balance_get(user=user) == 97

    response = admin_client.post(url(queued, "cancel"), {"reason": "customer asked"})

    assert response.status_code == 302
    assert Job.objects.get(pk=queued.pk).status == "cancelled"
    assert balance_get(user=user) == 100
    assert_logged(
        queued, by=superuser, contains=["Cancelled job", "3 credits refunded", "Reason: customer asked"]
    )


def test_cancelling_a_finished_job_is_an_error_message_and_changes_nothing(admin_client, user, queued):
    services.job_cancel(job=queued)

    response = admin_client.post(url(queued, "cancel"), {"reason": "again"})

    assert response.status_code == 200
    assert "A cancelled job cannot be cancelled." in response.content.decode()
    assert "Nothing was changed: see the errors below." in page_messages(response)
    assert balance_get(user=user) == 100 and history(queued) == []


def test_retry_from_the_job_page_creates_one_retry_job_and_is_logged(admin_client, superuser, user, queued):
    services.job_cancel(job=queued)

    admin_client.post(url(queued, "retry"), {"reason": "worker fixed"})
    again = admin_client.post(url(queued, "retry"), {"reason": "clicked twice"}, follow=True)

    retry = Job.objects.get(retry_of=queued)
    assert retry.status == "queued" and balance_get(user=user) == 97
    assert ALREADY_DONE in page_messages(again)
    assert_logged(queued, by=superuser, contains=["Created retry job", "Reason: worker fixed"])


def test_retrying_a_queued_job_is_an_error_message(admin_client, queued):
    response = admin_client.post(url(queued, "retry"), {"reason": "why not"})

    assert response.status_code == 200 and "A queued job cannot be retried." in response.content.decode()
    assert not Job.objects.filter(retry_of=queued).exists() and not LogEntry.objects.exists()


def test_operations_need_a_reason_and_a_post(admin_client, user, queued):
    response = admin_client.post(url(queued, "cancel"), {"reason": ""})
    assert response.status_code == 200 and "reason" in response.context["form"].errors

    page = admin_client.get(url(queued, "cancel"))  # the confirmation page
    assert page.status_code == 200 and 'id="job-cancel-form"' in page.content.decode()

    assert Job.objects.get(pk=queued.pk).status == "queued" and balance_get(user=user) == 97
    assert not LogEntry.objects.exists()


def test_staff_who_may_only_view_jobs_cannot_operate(staff_client, queued):
    viewer = staff_client("view_job")
    page = viewer.get(reverse("admin:jobs_job_change", args=[queued.pk]))
    assert page.status_code == 200 and 'id="job-cancel-form"' not in page.content.decode()

    assert viewer.post(url(queued, "cancel"), {"reason": "x"}).status_code == 403
    assert Job.objects.get(pk=queued.pk).status == "queued"

    operator = staff_client("view_job", "change_job")
    assert operator.post(url(queued, "cancel"), {"reason": "x"}).status_code == 302
    assert Job.objects.get(pk=queued.pk).status == "cancelled"


def test_non_staff_cannot_operate(client, user, queued):
    admin_login(client, user)
    response = client.post(url(queued, "cancel"), {"reason": "x"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert Job.objects.get(pk=queued.pk).status == "queued"


def test_list_actions_are_logged_too(admin_client, superuser, queued):
    admin_client.post(
        reverse("admin:jobs_job_changelist"), {"action": "cancel_jobs", "_selected_action": [str(queued.pk)]}
    )

    assert Job.objects.get(pk=queued.pk).status == "cancelled"
    assert_logged(queued, by=superuser, contains=["Cancelled job", "list action"])
