from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.models import API_KEY_SCOPES
from config.exceptions import ApplicationError

KNOWN_SCOPES = set(API_KEY_SCOPES)


class Command(BaseCommand):
    help = "Create a service API key and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scopes", required=True, help=f"Comma-separated, from: {', '.join(sorted(KNOWN_SCOPES))}"
        )

    def handle(self, *args, name, scopes, **options):
        scope_list = [s.strip() for s in scopes.split(",") if s.strip()]
        unknown = set(scope_list) - KNOWN_SCOPES
        if unknown:
            raise CommandError(f"Unknown scopes: {', '.join(sorted(unknown))}")
        try:
            api_key, key = services.api_key_create(name=name, scopes=scope_list)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Created API key {api_key.prefix}… ({api_key.name}) scopes={scope_list}")
        self.stdout.write("Key (shown once, store it now):")
        self.stdout.write(key)
