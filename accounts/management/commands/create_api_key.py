import argparse

from accounts import services
from accounts.models import API_KEY_SCOPES, ServiceApiKey
from config.commands import BaseCommand, refused, text
from config.exceptions import ApplicationError

KNOWN_SCOPES = set(API_KEY_SCOPES)


def scope_list(value: str) -> list[str]:
    """argparse type: comma-separated scopes, each a known one."""
    scopes = [s.strip() for s in value.split(",") if s.strip()]
    if not scopes:
        raise argparse.ArgumentTypeError("give at least one scope")
    unknown = set(scopes) - KNOWN_SCOPES
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown scopes: {', '.join(sorted(unknown))}")
    return scopes


class Command(BaseCommand):
    help = "Create a service API key and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--name", required=True, type=text(max_length=ServiceApiKey._meta.get_field("name").max_length)
        )
        parser.add_argument(
            "--scopes",
            required=True,
            type=scope_list,
            help=f"Comma-separated, from: {', '.join(sorted(KNOWN_SCOPES))}",
        )

        parser.add_argument(
            "--kinds",
            default="",
            type=lambda value: [k.strip() for k in value.split(",") if k.strip()],
            help="Comma-separated job kind codes a jobs:work key may work on (default: every worker kind).",
        )

    def handle(self, *args, name, scopes, kinds, **options):
        try:
            api_key, key = services.api_key_create(name=name, scopes=scopes, job_kinds=kinds)
        except ApplicationError as exc:
            raise refused(exc) from None
        self.stdout.write(f"Created API key {api_key.prefix}… ({api_key.name}) scopes={scopes}")
        self.stdout.write("Key (shown once, store it now):")
        self.stdout.write(key)
