"""One way to change a job's status: job_transition. Everything else is refused before any
money moves (the pre_save signal's guards) or by the database (the status guard trigger)."""

import subprocess
import sys

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from config.exceptions import InvalidTransition
from credits.models import CreditTransaction
from credits.selectors import balance_get
from jobs import services
from jobs.models import Job, JobKind
from jobs.signals import StatusWriteRefused
from tests.factories import UserFactory
from tests.jobs.conftest import REPO_ROOT, give_credits

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
def test_a_job_save_outside_a_transaction_that_then_fails_a_constraint_loses_no_credits():
    # given: 10 credits and a job already using the external id "dup" (the insert below will
    # fail the (user, external_id) unique constraint)
    user = UserFactory()
    give_credits(user, 10)
    services.job_stats_upsert(user=user, external_id="dup", status="pending", requested_count=1)
    kind = JobKind.objects.get(code="account_batch")
    # when: the old lost-credits path — a bare Job.save() in autocommit, at a charged status
    job = Job(user=user, kind=kind, status="queued", requested_count=3, external_id="dup")
    assert connection.get_autocommit() and not connection.in_atomic_block
    with pytest.raises(StatusWriteRefused):
        job.save()
    # then: nothing charged, nothing stored (before the fix: balance 7, job never written)
    assert balance_get(user=user) == 10
    assert not CreditTransaction.objects.filter(user=user, type="usage").exists()
    assert Job.objects.filter(user=user).count() == 1


@pytest.mark.django_db(transaction=True)
def test_job_transition_failing_a_constraint_rolls_its_charge_back():
    user = UserFactory()
    give_credits(user, 10)
    services.job_stats_upsert(user=user, external_id="dup", status="pending", requested_count=1)
    job = Job(user=user, kind=JobKind.objects.get(code="account_batch"), requested_count=3, external_id="dup")
    with pytest.raises(IntegrityError):
        services.job_transition(job=job, to="queued")
    assert balance_get(user=user) == 10
    assert not CreditTransaction.objects.filter(user=user, type="usage").exists()


def test_a_bare_save_changing_the_status_is_refused_before_any_money_moves(funded_user):
    job = services.job_create(user=funded_user, kind_code="account_batch", requested_count=4)
    job = Job.objects.get(pk=job.pk)
    job.status = "cancelled"
    with pytest.raises(StatusWriteRefused), transaction.atomic():
        job.save()
    assert Job.objects.get(pk=job.pk).status == "queued"
    assert balance_get(user=funded_user) == 96
    assert not CreditTransaction.objects.filter(job_id=job.pk, type="refund").exists()


def test_a_status_save_with_update_fields_is_refused_before_the_charge(funded_user):
    job = services.job_stats_upsert(user=funded_user, external_id="uf", status="pending", requested_count=5)
    job = Job.objects.get(pk=job.pk)
    job.status = "queued"
    job._transition_to = "queued"  # even a save that claims to come from job_transition
    with pytest.raises(StatusWriteRefused), transaction.atomic():
        job.save(update_fields=["status"])
    assert balance_get(user=funded_user) == 100
    assert Job.objects.get(pk=job.pk).status == "pending"


def test_the_database_refuses_a_queryset_update_of_the_status(funded_user):
    job = services.job_create(user=funded_user, kind_code="account_batch")
    with pytest.raises(DatabaseError, match="job_transition"), transaction.atomic():
        Job.objects.filter(pk=job.pk).update(status="completed")
    assert Job.objects.get(pk=job.pk).status == "queued"


def test_the_database_refuses_raw_sql_status_writes_and_non_pending_inserts(funded_user):
    job = services.job_create(user=funded_user, kind_code="account_batch")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Job._meta.db_table} SET status = 'cancelled' WHERE id = %s", [job.pk])
    # an authorisation names one job: it does not open another one
    other = services.job_create(user=funded_user, kind_code="account_batch")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('jobs.transition', %s, true)", [str(other.pk)])
        cursor.execute(f"UPDATE {Job._meta.db_table} SET status = 'cancelled' WHERE id = %s", [job.pk])
    assert Job.objects.get(pk=job.pk).status == "queued"


def test_job_transition_refuses_a_move_the_table_forbids_and_changes_nothing(funded_user):
    job = services.job_create(user=funded_user, kind_code="account_batch", requested_count=2)
    services.job_cancel(job=job)
    with pytest.raises(InvalidTransition):
        services.job_transition(job=job, to="processing")
    job.refresh_from_db()
    assert job.status == "cancelled" and (job.credits_charged, job.credits_refunded) == (2, 2)


def test_job_transition_moves_money_once_along_the_way(funded_user):
    job = services.job_stats_upsert(user=funded_user, external_id="walk", status="pending", requested_count=3)
    assert balance_get(user=funded_user) == 100
    job = services.job_transition(job=job, to="queued")
    job = services.job_transition(job=job, to="processing")
    job = services.job_transition(job=job, to="completed", fields={"successful_count": 2, "failed_count": 1})
    assert (job.credits_charged, job.credits_refunded) == (3, 1)
    assert job.completed_at is not None and job.started_at is not None and job.progress == 100
    assert balance_get(user=funded_user) == 98


def test_services_import_neither_the_engine_nor_the_tasks():
    code = (
        "import django, sys; django.setup(); import jobs.services, jobs.admin, jobs.apis; "
        "bad = [m for m in ('jobs.engine', 'jobs.tasks') if m in sys.modules]; "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
