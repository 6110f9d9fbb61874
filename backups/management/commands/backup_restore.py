from django.core.management.base import CommandError

from backups import services
from config.commands import BaseCommand, refused, uuid_arg
from config.exceptions import ApplicationError

from ._common import get_backup


class Command(BaseCommand):
    help = (
        "Restore a backup into a NEW database (never the live one, never an existing one). "
        "Without --yes, makes every check the restore would make (the backup, the database name, "
        "the archive's checksum) and reports; nothing is created."
    )

    def add_arguments(self, parser):
        parser.add_argument("backup_id", type=uuid_arg)
        parser.add_argument("--database", required=True)
        parser.add_argument("--yes", action="store_true", help="really do it (otherwise only report)")

    def handle(self, *args, backup_id, database, yes, **options):
        backup = get_backup(backup_id)
        try:
            services.backup_restore(
                backup=backup, database=database, progress=self.stdout.write, dry_run=not yes
            )
        except ApplicationError as exc:
            raise refused(exc) from None
        except services.BackupError as exc:
            raise CommandError(str(exc)) from None
        if not yes:
            self.stdout.write(
                f"would restore backup {backup.pk} ({backup.size} bytes, "
                f"{backup.started_at:%Y-%m-%d %H:%M}) into new database {database}: the backup "
                "succeeded, the name is free and not the live database, the archive matches its "
                "sha256; run again with --yes"
            )
            return
        self.stdout.write(self.style.SUCCESS(f"restored into {database}"))
