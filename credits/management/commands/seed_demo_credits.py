from django.core.management.base import BaseCommand

from accounts.models import User
from credits.selectors import balance_get
from credits.services import credits_grant

DEMO_EMAIL = "demo@example.com"
DEMO_CREDITS = 50


class Command(BaseCommand):
    help = (f"Give the demo user {DEMO_EMAIL} (if it exists) {DEMO_CREDITS} welcome credits "
            "through the ledger. Idempotent: the grant has a fixed idempotency key.")

    def handle(self, *args, **options):
        demo = User.objects.filter(email__iexact=DEMO_EMAIL).first()
        if demo is None:
            self.stdout.write(f"credits: no {DEMO_EMAIL} user, nothing to seed.")
            return
        credits_grant(user=demo, amount=DEMO_CREDITS, type="bonus",
                      idempotency_key=f"seed_demo:{demo.pk}:welcome", reason="Demo welcome credits")
        self.stdout.write(f"credits: {DEMO_EMAIL} has {balance_get(user=demo)} credits.")
