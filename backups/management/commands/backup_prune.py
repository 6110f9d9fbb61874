from backups import services
from config.commands import BaseCommand


class Command(BaseCommand):
    help = "Apply retention (BACKUP_KEEP_DAILY days, BACKUP_KEEP_WEEKLY weeks); keeps the newest verified."

    def add_arguments(self, parser):
        parser.add_argument("--yes", action="store_true", help="really delete (otherwise only report)")

    def handle(self, *args, yes, **options):
        doomed = services.backup_prune(dry_run=not yes)
        verb = "deleted" if yes else "would delete"
        for b in doomed:
            self.stdout.write(f"{verb} {b.pk} {b.kind} {b.status} {b.started_at:%Y-%m-%d %H:%M}")
        self.stdout.write(f"{verb} {len(doomed)} backups" + ("" if yes else "; run again with --yes"))
