from backups import services
from config.commands import BaseCommand, refused, uuid_arg
from config.exceptions import ApplicationError

from ._common import get_snapshot


def _summary(changes: dict) -> str:
    parts = [
        f"{section} " + ", ".join(f"{what} {count}" for what, count in counts.items())
        for section, counts in changes.items()
        if section != "stock"
    ]
    parts.append(f"stock adjustments {len(changes.get('stock', []))}")
    return "; ".join(parts)


class Command(BaseCommand):
    help = (
        "Put a shop's catalogue back as a recovery snapshot recorded it (a snapshot is taken "
        "first). Without --yes, runs the whole restore and rolls it back: it reports what would "
        "change, or the conflict the restore would meet."
    )

    def add_arguments(self, parser):
        parser.add_argument("snapshot_id", type=uuid_arg)
        parser.add_argument("--yes", action="store_true", help="really restore (otherwise only report)")

    def handle(self, *args, snapshot_id, yes, **options):
        snapshot = get_snapshot(snapshot_id)
        try:
            result = services.snapshot_restore(snapshot=snapshot, dry_run=not yes)
        except ApplicationError as exc:
            raise refused(exc) from None
        if not yes:
            self.stdout.write(
                f"would restore shop {snapshot.shop} to {snapshot.created_at:%Y-%m-%d %H:%M}: "
                f"{_summary(result['changes'])}; run again with --yes"
            )
            return
        self.stdout.write(self.style.SUCCESS(f"restored: {result}"))
