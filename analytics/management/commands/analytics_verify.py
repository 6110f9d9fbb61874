from django.core.management.base import CommandError

from analytics import services
from config.commands import BaseCommand, UsageError, iso_date


class Command(BaseCommand):
    help = (
        "Recompute [--from, --to] from the raw orders (and platform tables) and report every stored "
        "analytics row that differs, is missing or should not exist. Read-only; exits 1 on a difference."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="date_from", required=True, type=iso_date)
        parser.add_argument("--to", dest="date_to", required=True, type=iso_date)
        parser.add_argument("--no-platform", action="store_true", help="check only the shop metrics")

    def handle(self, *args, date_from, date_to, no_platform, **options):
        if date_from > date_to:
            raise UsageError("--from must not be after --to.")
        diffs = services.metrics_verify(date_from=date_from, date_to=date_to, platform=not no_platform)
        if not diffs:
            self.stdout.write(
                self.style.SUCCESS(f"analytics {date_from}..{date_to}: every stored row matches")
            )
            return
        for diff in diffs:
            self.stdout.write(f"{diff['table']} [{diff['side']}] {diff['row']}")
        raise CommandError(
            f"{len(diffs)} difference(s) between stored analytics and the raw data.", returncode=1
        )
