"""Data: who decides each kind's outcome, and at most one retry per job.

Seeded kinds get their `reported_by` from `jobs.seed.REPORTED_BY`; other kinds run elsewhere
(executor `external`) default to `worker`, the safe choice (a user cannot finish them).
Before 0007 adds the unique index on `retry_of`, jobs retried more than once (concurrent retry
requests before this fix) keep the link on their oldest retry; the later ones are unlinked.
"""

from django.db import migrations

from jobs.seed import REPORTED_BY


def forward(apps, schema_editor):
    JobKind = apps.get_model("jobs", "JobKind")
    Job = apps.get_model("jobs", "Job")
    for kind in JobKind.objects.all():
        kind.reported_by = REPORTED_BY.get(kind.code, "worker" if kind.executor == "external" else "engine")
        kind.save(update_fields=["reported_by"])
    seen = set()
    for job_id, original in (
        Job.objects.filter(retry_of__isnull=False)
        .order_by("retry_of", "created_at", "id")
        .values_list("id", "retry_of")
    ):
        if original in seen:
            Job.objects.filter(pk=job_id).update(retry_of=None)
        seen.add(original)


def backward(apps, schema_editor):
    apps.get_model("jobs", "JobKind").objects.update(reported_by="engine")


class Migration(migrations.Migration):
    dependencies = [("jobs", "0005_reported_by_and_external_id_per_user")]
    operations = [migrations.RunPython(forward, backward)]
