"""The engine's metrics: wait and run time per kind, and jobs reaching a final state."""

import pytest
from prometheus_client import REGISTRY

from jobs import engine, services
from tests.factories import UserFactory
from tests.jobs.conftest import give_credits


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0


@pytest.mark.django_db(transaction=True)
def test_a_drained_job_counts_its_wait_its_run_and_its_final_state():
    # given
    user = UserFactory()
    give_credits(user, 10)
    waits = value("saas_job_wait_seconds_count", kind="test_noop")
    runs = value("saas_job_run_seconds_count", kind="test_noop", outcome="completed")
    completed = value("saas_jobs_finished_total", status="completed")
    cancelled = value("saas_jobs_finished_total", status="cancelled")
    for _ in range(2):
        services.job_create(user=user, kind_code="test_noop", params={})

    # when
    assert engine.jobs_drain(budget_seconds=30, batch=1) == 2
    waiting = services.job_create(user=user, kind_code="test_noop", params={})
    services.job_cancel(job=waiting)

    # then
    assert value("saas_job_wait_seconds_count", kind="test_noop") == waits + 2
    assert value("saas_job_run_seconds_count", kind="test_noop", outcome="completed") == runs + 2
    assert value("saas_jobs_finished_total", status="completed") == completed + 2
    assert value("saas_jobs_finished_total", status="cancelled") == cancelled + 1


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_final_state_is_not_counted():
    from django.db import transaction

    user = UserFactory()
    give_credits(user, 10)
    job = services.job_create(user=user, kind_code="test_noop", params={})
    cancelled = value("saas_jobs_finished_total", status="cancelled")

    with pytest.raises(RuntimeError), transaction.atomic():
        services.job_cancel(job=job)
        raise RuntimeError("roll back")

    assert value("saas_jobs_finished_total", status="cancelled") == cancelled
