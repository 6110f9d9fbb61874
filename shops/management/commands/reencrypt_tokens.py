from cryptography.fernet import InvalidToken
from django.core.management.base import CommandError

from config.commands import BaseCommand
from shops import services


class Command(BaseCommand):
    help = (
        "Re-encrypt social-integration tokens with the newest key in FERNET_KEYS (after adding a "
        "key in front). Reports what it would do unless given --yes. Keep the old key configured "
        "until this has run with --yes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--yes", action="store_true", help="Actually re-encrypt (default: dry run).")

    def handle(self, *args, **options):
        dry_run = not options["yes"]
        try:
            result = services.integration_tokens_reencrypt(dry_run=dry_run)
        except InvalidToken:
            raise CommandError(
                "A token is encrypted under none of the configured FERNET_KEYS; "
                "nothing was changed. Restore the missing key and retry."
            ) from None
        self.stdout.write(
            f"{result['integrations']} integrations, {result['stale_tokens']} tokens under an older key."
        )
        if dry_run:
            self.stdout.write("Dry run: nothing changed. Run with --yes to re-encrypt.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Re-encrypted {result['reencrypted']} tokens."))
