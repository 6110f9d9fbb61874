import pytest
from django.core.management import call_command

from accounts.models import User
from credits.selectors import balance_get
from jobs import services
from jobs.models import ApiUsageLog, Job
from tests.factories import UserFactory, admin_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    admin_login(client, staff)
    return client


def test_admin_job_list_filters_and_search(admin_client, funded_user):
    job = services.job_create(user=funded_user, kind_code="account_batch", external_id="find-me")
    for query in [
        "",
        "?status__exact=queued",
        "?priority=0",
        "?q=find-me",
        f"?kind__id__exact={job.kind_id}",
        "?created_at__gte=2026-01-01T00:00:00%2B00:00",
    ]:
        assert admin_client.get(f"/admin/jobs/job/{query}").status_code == 200
    assert b"find-me" in admin_client.get("/admin/jobs/job/?q=find-me").content
    assert admin_client.get("/admin/jobs/jobkind/").status_code == 200
    assert admin_client.get("/admin/jobs/apiusagelog/").status_code == 200


def test_admin_cancel_action_goes_through_the_service_and_refunds(admin_client, funded_user):
    job = services.job_create(user=funded_user, kind_code="account_batch", requested_count=3)
    admin_client.post("/admin/jobs/job/", {"action": "cancel_jobs", "_selected_action": [str(job.pk)]})
    assert Job.objects.get(pk=job.pk).status == "cancelled"
    assert balance_get(user=funded_user) == 100
    admin_client.post("/admin/jobs/job/", {"action": "retry_jobs", "_selected_action": [str(job.pk)]})
    assert Job.objects.filter(retry_of=job).count() == 1


def test_usage_logs_are_read_only_in_admin(admin_client):
    log = ApiUsageLog.objects.create(provider="p", units=1)
    assert admin_client.get("/admin/jobs/apiusagelog/add/").status_code == 403
    assert admin_client.post(f"/admin/jobs/apiusagelog/{log.pk}/delete/", {"post": "yes"}).status_code == 403


def test_seed_demo_jobs_is_idempotent_and_needs_the_demo_user():
    call_command("seed_demo_jobs")
    assert Job.objects.count() == 0
    demo = UserFactory(email="demo@example.com")
    call_command("seed_demo_jobs")
    call_command("seed_demo_jobs")
    assert Job.objects.filter(user=demo).count() == 5
    assert Job.objects.get(external_id="demo-batch-1").status == "completed"
    assert Job.objects.get(external_id="demo-batch-3").status == "failed"
    # charged 1 + 10 + 5 + 3; refunded the 2 failed units of batch-1 and all of the failed batch-3
    assert balance_get(user=User.objects.get(pk=demo.pk)) == 20 - 19 + 2 + 3
