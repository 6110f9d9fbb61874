"""Existing payment log rows: `source` held the provider; it now names the source. Applied
events claim their (source, provider, event_id). Job webhook deliveries (jobs.JobWebhookEvent)
are copied in as source "jobs"."""

from django.db import migrations

APPLIED = ("processed", "ignored")
JOB_OUTCOMES = {
    "applied": "processed",
    "duplicate": "duplicate",
    "unknown_job": "rejected",
    "rejected": "rejected",
}


def forward(apps, schema_editor):
    WebhookLog = apps.get_model("credits", "WebhookLog")
    for row in WebhookLog.objects.exclude(source__in=["payments", "jobs"]).iterator():
        row.provider, row.source = row.source, "payments"
        row.applied = row.outcome in APPLIED and bool(row.event_id)
        row.save(update_fields=["provider", "source", "applied"])
    JobWebhookEvent = apps.get_model("jobs", "JobWebhookEvent")
    WebhookLog.objects.bulk_create(
        [
            WebhookLog(
                created_at=e.created_at,
                updated_at=e.updated_at,
                source="jobs",
                provider=e.provider,
                event_id=e.event_id,
                headers=e.headers,
                payload=e.payload if e.signature_valid else None,
                raw_body=(e.payload or {}).get("raw", "") if not e.signature_valid else "",
                signature_valid=e.signature_valid,
                outcome=JOB_OUTCOMES.get(e.outcome, "rejected"),
                status_code=200 if e.outcome in ("applied", "duplicate") else 400,
                error=e.error,
                job_id=e.job_id,
                applied=e.outcome == "applied" and bool(e.event_id),
            )
            for e in JobWebhookEvent.objects.order_by("created_at").iterator()
        ]
    )


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0004_webhooklog_shared_receiver"),
        ("jobs", "0008_job_status_guard"),
    ]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
