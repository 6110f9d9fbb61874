import argparse
from datetime import datetime

from django.core.management.base import CommandError

from backups import services
from config.commands import BaseCommand, UsageError, positive_int, refused, uuid_arg
from config.exceptions import ApplicationError

from ._common import get_backup


def aware_time(value: str) -> datetime:
    """argparse type: an ISO 8601 time with its offset (2026-11-22T10:41:00Z)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no timezone (add Z or +00:00)")
    return moment


class Command(BaseCommand):
    help = (
        "Restore a backup into a NEW database (never the live one, never an existing one), or with "
        "--to-time the whole cluster as it was at that moment (pgBackRest: the newest base backup "
        "before it plus the archived WAL) into a NEW data directory, started on --port. Without "
        "--yes, makes every check the restore would make and reports; nothing is created."
    )

    def add_arguments(self, parser):
        parser.add_argument("backup_id", type=uuid_arg, nargs="?", help="a dump (BackupLog id)")
        parser.add_argument("--database", help="the new database a dump is restored into")
        parser.add_argument("--to-time", type=aware_time, help="point in time, e.g. 2026-11-22T10:41:00Z")
        parser.add_argument("--pgdata", help="with --to-time: the new, empty data directory")
        parser.add_argument("--port", type=positive_int, help="with --to-time: the port the copy listens on")
        parser.add_argument("--yes", action="store_true", help="really do it (otherwise only report)")

    def handle(self, *args, backup_id, database, to_time, pgdata, port, yes, **options):
        if to_time is not None:
            if backup_id is not None or database:
                raise UsageError(
                    "--to-time restores the cluster: give --pgdata and --port, not a backup id or --database"
                )
            if not pgdata or port is None:
                raise UsageError("--to-time needs --pgdata DIR and --port PORT")
            return self._to_time(to_time=to_time, pgdata=pgdata, port=port, yes=yes)
        if backup_id is None or not database:
            raise UsageError("give a backup id and --database NAME, or --to-time with --pgdata and --port")
        if pgdata or port is not None:
            raise UsageError("--pgdata and --port go with --to-time")
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

    def _to_time(self, *, to_time, pgdata, port, yes):
        try:
            result = services.pitr_restore(
                target_time=to_time, pgdata=pgdata, port=port, progress=self.stdout.write, dry_run=not yes
            )
        except ApplicationError as exc:
            raise refused(exc) from None
        except services.BackupError as exc:
            raise CommandError(str(exc)) from None
        if not yes:
            self.stdout.write(
                f"would restore the cluster as of {result['to_time']} from backup {result['backup']} "
                f"(finished {result['backup_finished']}) into {result['pgdata']}, started on port "
                f"{result['port']}; run again with --yes"
            )
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"restored as of {result['to_time']} into {result['pgdata']}, running on 127.0.0.1:{port} "
                f"(restore {result['restore_seconds']} s, WAL replay and promotion "
                f"{result['recovery_seconds']} s); database {result['database']}: {result['rows']} rows, "
                "balance = SUM(ledger) for every user"
            )
        )
