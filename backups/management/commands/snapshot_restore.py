from django.core.management.base import BaseCommand, CommandError

from backups import services
from config.exceptions import ApplicationError

from ._common import get_snapshot


class Command(BaseCommand):
    help = "Put a shop's catalogue back as a recovery snapshot recorded it (a snapshot is taken first)."

    def add_arguments(self, parser):
        parser.add_argument("snapshot_id")
        parser.add_argument("--yes", action="store_true", help="really restore (otherwise only report)")

    def handle(self, *args, snapshot_id, yes, **options):
        snapshot = get_snapshot(snapshot_id)
        if not yes:
            doc = snapshot.document
            self.stdout.write(
                f"would restore shop {snapshot.shop} to {snapshot.created_at:%Y-%m-%d %H:%M}: "
                f"{len(doc.get('items', []))} items, {len(doc.get('forms', []))} forms; "
                "run again with --yes"
            )
            return
        try:
            result = services.snapshot_restore(snapshot=snapshot)
        except ApplicationError as exc:
            raise CommandError(exc.message if hasattr(exc, "message") else str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"restored: {result}"))
