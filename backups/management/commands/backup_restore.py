from django.core.management.base import BaseCommand, CommandError

from backups import services
from config.exceptions import ApplicationError

from ._common import get_backup


class Command(BaseCommand):
    help = "Restore a backup into a NEW database (never the live one, never an existing one)."

    def add_arguments(self, parser):
        parser.add_argument("backup_id")
        parser.add_argument("--database", required=True)
        parser.add_argument("--yes", action="store_true", help="really do it (otherwise only report)")

    def handle(self, *args, backup_id, database, yes, **options):
        backup = get_backup(backup_id)
        if not yes:
            self.stdout.write(
                f"would restore backup {backup.pk} ({backup.size} bytes, "
                f"{backup.started_at:%Y-%m-%d %H:%M}) into new database {database}; "
                "run again with --yes"
            )
            return
        try:
            services.backup_restore(backup=backup, database=database, progress=self.stdout.write)
        except (services.BackupError, ApplicationError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"restored into {database}"))
