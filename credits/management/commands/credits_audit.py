from django.core.management.base import CommandError

from config.commands import BaseCommand
from credits.selectors import credits_audit


class Command(BaseCommand):
    help = (
        "Check that every user's balance equals the sum of their ledger rows and is not "
        "negative. Prints each mismatch; exits non-zero if there is any."
    )

    def handle(self, *args, **options):
        mismatches = credits_audit()
        for mismatch in mismatches:
            self.stdout.write(self.style.ERROR(f"MISMATCH {mismatch}"))
        if mismatches:
            raise CommandError(f"{len(mismatches)} credit balance(s) do not match the ledger.")
        self.stdout.write(self.style.SUCCESS("OK: every balance equals its ledger sum and is >= 0."))
