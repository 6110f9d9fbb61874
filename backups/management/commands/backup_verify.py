from django.core.management.base import CommandError

from backups import services
from config.commands import BaseCommand, refused, uuid_arg
from config.exceptions import ApplicationError

from ._common import get_backup


class Command(BaseCommand):
    help = (
        "Verify a backup (default: the newest succeeded): sha256 and pg_restore --list; with "
        "--restore-test also restore it into a scratch database, compare row counts and the "
        "credit invariant, then drop the scratch database."
    )

    def add_arguments(self, parser):
        parser.add_argument("backup_id", nargs="?", type=uuid_arg)
        parser.add_argument("--restore-test", action="store_true")

    def handle(self, *args, backup_id, restore_test, **options):
        backup = get_backup(backup_id)
        self.stdout.write(f"verifying backup {backup.pk} ({backup.started_at:%Y-%m-%d %H:%M})")
        try:
            services.backup_verify(backup=backup, restore_test=restore_test, progress=self.stdout.write)
        except ApplicationError as exc:
            raise refused(exc) from None
        except services.BackupError as exc:
            raise CommandError(str(exc)) from None
        if restore_test:
            self.stdout.write(f"restore test: {backup.restore_test_result}")
        self.stdout.write(self.style.SUCCESS("OK"))
