import uuid

from django.db import migrations

from jobs.seed import SEED_KINDS


def seed(apps, schema_editor):
    JobKind = apps.get_model("jobs", "JobKind")
    for kind in SEED_KINDS:
        JobKind.objects.get_or_create(code=kind["code"], defaults={"id": uuid.uuid4(), **kind})


def unseed(apps, schema_editor):
    JobKind = apps.get_model("jobs", "JobKind")
    JobKind.objects.filter(code__in=[k["code"] for k in SEED_KINDS], jobs__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("jobs", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
