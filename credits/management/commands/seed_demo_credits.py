from accounts.models import User
from config.commands import BaseCommand
from credits.models import CreditPackage, Payment, Provider
from credits.selectors import balance_get
from credits.services import credits_grant, payment_complete, payment_fail, purchase_start

DEMO_EMAIL = "demo@example.com"
DEMO_CREDITS = 50


class Command(BaseCommand):
    help = (
        f"Give the demo user {DEMO_EMAIL} (if it exists) {DEMO_CREDITS} welcome credits "
        "through the ledger. Idempotent: the grant has a fixed idempotency key."
    )

    def handle(self, *args, **options):
        demo = User.objects.filter(email__iexact=DEMO_EMAIL).first()
        if demo is None:
            self.stdout.write(f"credits: no {DEMO_EMAIL} user, nothing to seed.")
            return
        credits_grant(
            user=demo,
            amount=DEMO_CREDITS,
            type="bonus",
            idempotency_key=f"seed_demo:{demo.pk}:welcome",
            reason="Demo welcome credits",
        )
        if not Payment.objects.filter(user=demo).exclude(provider=Provider.FREE).exists():
            self._payments(demo)
        self.stdout.write(f"credits: {DEMO_EMAIL} has {balance_get(user=demo)} credits.")

    def _payments(self, demo) -> None:
        """Three purchases as the payment providers would leave them: completed (credits
        granted through the ledger), failed, and one still waiting for its webhook."""
        popular = CreditPackage.objects.get(name="Popular Pack")
        starter = CreditPackage.objects.get(name="Starter Pack")
        paid = purchase_start(user=demo, package=popular, provider=Provider.TRUEMONEY)
        payment_complete(payment=paid, transaction_id=f"demo-txn-{demo.pk}-1")
        failed = purchase_start(user=demo, package=starter, provider=Provider.PROMPTPAY)
        payment_fail(payment=failed, reason="Card declined (demo)")
        purchase_start(user=demo, package=starter, provider=Provider.TRUEMONEY)
