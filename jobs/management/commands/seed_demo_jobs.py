from django.db import transaction

from accounts.models import User
from config.commands import BaseCommand
from credits.services import credits_grant
from jobs import services
from jobs.models import Job

DEMO_EMAIL = "demo@example.com"
# (external_id, kind, requested, final report) — the report is what an external worker sent.
# Counts are explicit: a `completed` report without them would mean every unit succeeded.
DEMO_JOBS = [
    ("demo-render-1", "video_render", 1, {"status": "completed", "successful_count": 1}),
    ("demo-batch-1", "account_batch", 10, {"status": "completed", "successful_count": 8, "failed_count": 2}),
    ("demo-batch-2", "account_batch", 5, {"status": "processing", "successful_count": 2}),
    ("demo-render-2", "video_render", 2, {"status": "pending"}),
    ("demo-batch-3", "account_batch", 3, {"status": "failed", "failed_count": 3}),  # refunded
]


class Command(BaseCommand):
    help = "Create a few demo jobs for demo@example.com if that user exists (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        user = User.objects.filter(email__iexact=DEMO_EMAIL).first()
        if user is None:
            self.stdout.write("seed_demo_jobs: no demo user, nothing to do.")
            return
        credits_grant(user=user, amount=20, idempotency_key="seed-demo-jobs:grant", reason="Demo credits")
        created = 0
        for external_id, kind, requested, report in DEMO_JOBS:
            if Job.objects.filter(user=user, external_id=external_id).exists():
                continue
            # As the external worker would report it (a service key), so worker kinds may finish.
            services.job_stats_upsert(
                user=user,
                external_id=external_id,
                kind_code=kind,
                requested_count=requested,
                reporter=services.Reporter.SERVICE,
                **report,
            )
            created += 1
        self.stdout.write(f"seed_demo_jobs: {created} demo job(s) created.")
