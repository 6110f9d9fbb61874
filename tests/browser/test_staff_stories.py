"""Each staff role's day in Chromium, logged in through the password and the second factor:
support answers a customer, operations pauses a schedule and starts a backup, a viewer can
change nothing. (Finance's refund is in test_staff_operations.py.)"""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from django_celery_beat.models import PeriodicTask
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from backups.models import BackupLog
from jobs import services as job_services
from jobs.models import Job
from tests.browser.conftest import STAFF_PASSWORD, log_in
from tests.factories import UserFactory
from tests.jobs.conftest import give_credits

pytestmark = pytest.mark.django_db(transaction=True)


def staff_in(role: str) -> User:
    staff = User.objects.create_user(f"{role}@example.com", STAFF_PASSWORD, is_staff=True, name=role.title())
    staff.groups.add(Group.objects.get(name=role))
    TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    return staff


@pytest.fixture
def customer_with_a_cancelled_job(reference_data):
    customer = UserFactory(email="customer.story@example.com")
    give_credits(customer, 20)
    job = job_services.job_create(user=customer, kind_code="account_batch")
    job_services.job_cancel(job=job)
    return customer, Job.objects.get(pk=job.pk)


def test_support_finds_the_customer_by_email_reads_the_timeline_and_retries_the_job(
    page, console, live_server, customer_with_a_cancelled_job
):
    customer, job = customer_with_a_cancelled_job
    support = staff_in("support")
    log_in(page, live_server, support.email)

    page.goto(f"{live_server.url}{reverse('admin:accounts_user_changelist')}")
    page.fill("#searchbar", customer.email)
    with page.expect_navigation():
        page.press("#searchbar", "Enter")
    with page.expect_navigation():
        page.click(f"#result_list a:has-text('{customer.email}')")

    timeline = page.locator("#user-timeline")
    assert job.external_id in timeline.inner_text()
    with page.expect_navigation():
        timeline.locator(f"a:has-text('{job.external_id}')").click()
    page.fill("#job-retry-reason", "customer asked on chat")
    with page.expect_navigation():
        page.click("#job-retry-form-submit")

    assert page.locator(".messagelist .success").count() == 1
    assert Job.objects.get(retry_of=job).status == "queued"
    assert console.take() == []


def test_operations_pauses_a_schedule_and_starts_a_backup(page, console, live_server, monkeypatch):
    from backups import tasks

    call_command("sync_schedules")
    queued = []
    monkeypatch.setattr(tasks.run_backup, "delay", lambda backup_id: queued.append(backup_id))
    schedule = PeriodicTask.objects.filter(enabled=True).order_by("name").first()
    operations = staff_in("operations")
    log_in(page, live_server, operations.email)

    page.goto(f"{live_server.url}{reverse('admin:django_celery_beat_periodictask_changelist')}")
    page.check(f"input.action-select[value='{schedule.pk}']")
    page.select_option("select[name=action]", "disable_tasks")
    with page.expect_navigation():
        page.click("button[name=index]")
    assert PeriodicTask.objects.get(pk=schedule.pk).enabled is False

    page.goto(f"{live_server.url}{reverse('admin:backups_backuplog_changelist')}")
    with page.expect_navigation():
        page.click("#start-backup")
    backup = BackupLog.objects.get()
    assert backup.kind == "manual" and queued == [str(backup.pk)]
    assert console.take() == []


def test_a_viewer_sees_every_page_and_is_offered_no_change(
    page, console, live_server, customer_with_a_cancelled_job
):
    customer, job = customer_with_a_cancelled_job
    call_command("sync_schedules")
    viewer = staff_in("viewer")
    log_in(page, live_server, viewer.email)

    page.goto(f"{live_server.url}{reverse('admin:accounts_user_change', args=[customer.pk])}")
    assert page.locator("#user-timeline").is_visible()
    assert page.locator("input[name=_save]").count() == 0 and page.locator("input[name=email]").count() == 0

    page.goto(f"{live_server.url}{reverse('admin:jobs_job_change', args=[job.pk])}")
    assert page.locator("#job-operations").count() == 0

    page.goto(f"{live_server.url}{reverse('admin:backups_backuplog_changelist')}")
    assert page.locator("#start-backup").count() == 0

    page.goto(f"{live_server.url}{reverse('admin:django_celery_beat_periodictask_changelist')}")
    assert page.locator("select[name=action] option[value=disable_tasks]").count() == 0

    # the operation's own page refuses them too
    response = page.goto(f"{live_server.url}{reverse('admin:jobs_job_retry', args=[job.pk])}")
    assert response is not None and response.status == 403
    assert not Job.objects.filter(retry_of=job).exists()
    assert [e for e in console.take() if "HTTP 5" in e] == []
