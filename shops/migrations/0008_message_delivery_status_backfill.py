"""Outbound messages written before channel delivery existed were never sent anywhere: they are
recorded as `failed` with that reason, so no connector or task sends stale replies now."""

from django.db import migrations

NOT_SENT = "Written before channel delivery existed; never sent."


def backfill(apps, schema_editor):
    Message = apps.get_model("shops", "Message")
    Message.objects.filter(direction="outbound", delivery_status__isnull=True).update(
        delivery_status="failed", error=NOT_SENT
    )


def unfill(apps, schema_editor):
    Message = apps.get_model("shops", "Message")
    Message.objects.filter(direction="outbound", error=NOT_SENT).update(delivery_status=None, error="")


class Migration(migrations.Migration):
    dependencies = [("shops", "0007_channel_delivery")]

    operations = [migrations.RunPython(backfill, unfill)]
