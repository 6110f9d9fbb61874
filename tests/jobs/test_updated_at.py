"""`updated_at` moves on every write, bulk paths included: the database trigger of
config/updated_at.py on every table that carries it."""

from datetime import UTC, datetime

import pytest
from django.apps import apps
from django.db import connection

from config.updated_at import TRIGGER_NAME, models_with_updated_at
from jobs import services
from jobs.models import Job, JobKind
from jobs.processors import JobContext
from tests.jobs.factories import JobFactory

pytestmark = pytest.mark.django_db

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _backdate(model, pk) -> None:
    model.objects.filter(pk=pk).update(updated_at=LONG_AGO)
    assert model.objects.get(pk=pk).updated_at == LONG_AGO


def test_every_table_with_updated_at_carries_the_trigger():
    # given every model of the project that has an updated_at column
    ours = [
        m
        for m in apps.get_models()
        if "site-packages" not in m._meta.app_config.path
        and not m._meta.proxy
        and any(f.name == "updated_at" for f in m._meta.concrete_fields)
    ]
    assert len(ours) > 30 and set(ours) == set(models_with_updated_at())
    # then each table has the installed, enabled trigger
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname LIKE %s AND t.tgenabled = 'O' AND NOT t.tgisinternal",
            [f"pgtrigger_{TRIGGER_NAME}_%"],
        )
        tables = {row[0] for row in cursor.fetchall()}
    missing = sorted(m._meta.db_table for m in ours if m._meta.db_table not in tables)
    assert missing == []


def test_queryset_update_and_bulk_update_move_updated_at():
    job = JobFactory()
    _backdate(Job, job.pk)
    Job.objects.filter(pk=job.pk).update(priority=5)
    assert Job.objects.get(pk=job.pk).updated_at > LONG_AGO

    kind = JobKind.objects.get(code="account_batch")
    _backdate(JobKind, kind.pk)
    kind.name = "Account batch"
    JobKind.objects.bulk_update([kind], ["name"])
    assert JobKind.objects.get(pk=kind.pk).updated_at > LONG_AGO


def test_raw_sql_update_moves_updated_at_and_an_explicit_value_is_kept():
    job = JobFactory()
    _backdate(Job, job.pk)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Job._meta.db_table} SET priority = 3 WHERE id = %s", [job.pk])
    assert Job.objects.get(pk=job.pk).updated_at > LONG_AGO

    chosen = datetime(2021, 6, 1, tzinfo=UTC)
    Job.objects.filter(pk=job.pk).update(priority=4, updated_at=chosen)
    assert Job.objects.get(pk=job.pk).updated_at == chosen


def test_a_count_only_patch_stats_moves_the_jobs_updated_at(auth_client, funded_user):
    # given a client-reported job at 0 successes, last written long ago
    body = {"job_id": "batch-1", "requested_count": 3, "status": "processing"}
    assert auth_client.patch("/api/stats", body, format="json").status_code == 200
    job = Job.objects.get(external_id="batch-1")
    _backdate(Job, job.pk)
    # when only the counts change
    response = auth_client.patch("/api/stats", {**body, "successful_count": 3}, format="json")
    # then the row's updated_at moved with them
    assert response.status_code == 200
    job = Job.objects.get(pk=job.pk)
    assert job.successful_count == 3 and job.updated_at > LONG_AGO


def test_the_engines_progress_report_moves_updated_at(funded_user):
    job = services.job_create(user=funded_user, kind_code="account_batch", requested_count=1)
    _backdate(Job, job.pk)
    JobContext(job=job, attempt=job.attempts).progress(40)
    job = Job.objects.get(pk=job.pk)
    assert job.progress == 40 and job.updated_at > LONG_AGO
