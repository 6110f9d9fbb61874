from django.core.management.base import CommandError

from backups import services
from backups.models import BackupLog
from config.commands import BaseCommand, refused
from config.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Dump the database now (pg_dump -Fc to the `backups` storage) and verify the archive."

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=BackupLog.Kind.values, default=BackupLog.Kind.MANUAL)
        parser.add_argument(
            "--no-verify", action="store_true", help="skip the checksum/pg_restore --list check"
        )

    def handle(self, *args, kind, no_verify, **options):
        self.stdout.write(f"backing up ({kind}) …")
        try:
            backup = services.backup_create(kind=kind, progress=self.stdout.write)
        except ApplicationError as exc:
            raise refused(exc) from None
        if backup.status != BackupLog.Status.SUCCEEDED:
            raise CommandError(f"backup {backup.pk} failed: {backup.error}")
        self.stdout.write(f"dumped {backup.size} bytes in {backup.duration}, sha256 {backup.sha256}")
        if not no_verify:
            try:
                services.backup_verify(backup=backup, progress=self.stdout.write)
            except services.BackupError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write("verified")
        services.offsite_sync(backup=backup)
        self.stdout.write(self.style.SUCCESS(f"backup {backup.pk} → {backup.storage}:{backup.file_name}"))
