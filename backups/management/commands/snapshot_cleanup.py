from backups import services
from config.commands import BaseCommand


class Command(BaseCommand):
    help = "Delete recovery snapshots past their expiry (90 days)."

    def add_arguments(self, parser):
        parser.add_argument("--yes", action="store_true", help="really delete (otherwise only report)")

    def handle(self, *args, yes, **options):
        count = services.snapshot_cleanup(dry_run=not yes)
        self.stdout.write(
            f"deleted {count} snapshots"
            if yes
            else f"would delete {count} expired snapshots; run again with --yes"
        )
