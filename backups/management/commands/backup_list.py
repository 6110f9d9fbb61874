from backups import selectors
from config.commands import BaseCommand, positive_int


class Command(BaseCommand):
    help = "List backups, newest first, with their verification and offsite copies."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=positive_int, default=50)

    def handle(self, *args, limit, **options):
        for b in selectors.backup_list()[:limit]:
            copies = ", ".join(f"{s.target}:{s.status}" for s in b.sync_statuses.all()) or "-"
            self.stdout.write(
                f"{b.pk}  {b.started_at:%Y-%m-%d %H:%M}  {b.kind:<7} {b.status:<9} {b.size or 0:>12} B  "
                f"verified={'yes' if b.verified_at else 'no'} "
                f"restore-tested={'yes' if b.restore_tested_at else 'no'}"
                f"  offsite={copies}" + (f"  error={b.error[:80]}" if b.error else "")
            )
