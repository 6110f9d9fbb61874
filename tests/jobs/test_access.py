"""Every jobs endpoint: anonymous callers get 401, another user's job is a 404 that changes nothing."""

import pytest

from jobs.models import Job
from tests.conftest import assert_error
from tests.jobs.factories import JobFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/api/jobs"),
    ("post", "/api/jobs"),
    ("get", "/api/jobs/{job}"),
    ("post", "/api/jobs/{job}/cancel"),
    ("post", "/api/jobs/{job}/retry"),
    ("post", "/api/jobs/{job}/files"),
    ("get", "/api/job/{external_id}"),
    ("get", "/api/jobs/queue-status"),
    ("get", "/api/stats"),
    ("patch", "/api/stats"),
    ("get", "/api/stats/daily"),
]
PER_JOB = [(method, path) for method, path in ENDPOINTS if "{" in path]


@pytest.mark.parametrize("method, path", ENDPOINTS)
def test_anonymous_callers_are_refused_with_401(api_client, other_user, method, path):
    job = JobFactory(user=other_user, status="failed")

    response = getattr(api_client, method)(path.format(job=job.pk, external_id=job.external_id))

    assert_error(response, 401)


@pytest.mark.parametrize("method, path", PER_JOB)
def test_another_users_job_is_404_and_unchanged(auth_client, other_user, method, path):
    job = JobFactory(user=other_user, status="failed")
    before = Job.objects.filter(pk=job.pk).values().get()

    response = getattr(auth_client, method)(path.format(job=job.pk, external_id=job.external_id))

    assert_error(response, 404, "not_found")
    assert Job.objects.filter(pk=job.pk).values().get() == before
    assert Job.objects.count() == 1
