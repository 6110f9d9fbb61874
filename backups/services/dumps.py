"""Database backups: dump, verify, restore test, restore into a new database, retention.

A dump is `pg_dump -Fc --snapshot=<id>` where the snapshot is exported by a REPEATABLE READ
transaction on a connection of our own (Django's default connection runs in autocommit, so its
transaction would not outlive one statement). The row counts are read in that transaction, so
they describe exactly what the archive holds. The archive streams from pg_dump's stdout to the
storage under a temporary name while its sha256 is computed; only after pg_dump exits 0 is it
moved to its final name and the row marked `succeeded`. Any failure deletes the partial file,
marks the row `failed` with the error and logs at ERROR.
"""

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages
from django.db import transaction
from django.utils import timezone
from psycopg import IsolationLevel

from backups import pg
from backups.models import BackupLog, SyncStatus
from backups.states import BACKUP_MACHINE
from config.exceptions import ApplicationError, Conflict, InvalidTransition

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
PROGRESS_EVERY = 64 * CHUNK
STORAGE_ALIAS = "backups"


class BackupError(Exception):
    """A dump, verification or restore step failed (the message says which and why)."""


class _HashingReader:
    """File-like view of pg_dump's stdout that hashes and counts what the storage reads."""

    def __init__(self, stream, progress=None):
        self.stream, self.progress = stream, progress
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(CHUNK if size is None or size < 0 else size)
        self.sha256.update(data)
        if self.progress and (self.size + len(data)) // PROGRESS_EVERY > self.size // PROGRESS_EVERY:
            self.progress(f"dumped {(self.size + len(data)) // 1024**2} MiB")
        self.size += len(data)
        return data


def _final_name(backup: BackupLog, run: str) -> str:
    at = backup.started_at
    return f"{at:%Y/%m/%d}/{backup.database}-{backup.kind}-{at:%Y%m%dT%H%M%SZ}-{backup.pk.hex[:8]}-{run}.dump"


def _promote(storage, temp_name: str, final_name: str) -> str:
    """Give a complete archive its final name: a rename on a local folder, else copy + delete."""
    try:
        src, dst = Path(storage.path(temp_name)), Path(storage.path(final_name))
    except NotImplementedError:
        with storage.open(temp_name, "rb") as fh:
            name = storage.save(final_name, File(fh, name=final_name))
        storage.delete(temp_name)
        return name
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
    return final_name


@transaction.atomic
def backup_start(*, kind: str = BackupLog.Kind.MANUAL, created_by=None) -> BackupLog:
    """Create the `running` row of a backup about to be made (the API queues the dump after this)."""
    if kind not in BackupLog.Kind.values:
        raise ApplicationError(
            "Unknown backup kind.", code="validation_error", fields={"kind": ["Unknown kind."]}
        )
    return BackupLog.objects.create(
        kind=kind,
        started_at=timezone.now(),
        created_by=created_by,
        storage=STORAGE_ALIAS,
        database=pg.live_database(),
    )


# What a backup's end records besides its status.
RESULT_FIELDS = frozenset(
    {
        "finished_at",
        "duration",
        "size",
        "sha256",
        "file_name",
        "pg_dump_version",
        "server_version",
        "row_counts",
        "error",
    }
)


@transaction.atomic
def backup_transition(*, backup: BackupLog, to: str, fields: dict | None = None) -> BackupLog:
    """The only writer of `BackupLog.status` (a trigger refuses every other write): lock the row,
    check BACKUP_TRANSITIONS (backups/states.py; InvalidTransition, 409, moving to the status it
    already has included), and write the status with what the move records (`fields`, among
    RESULT_FIELDS: the archive for `succeeded`, the error for `failed`) in one statement.
    Raises ValueError for a field that is not a result field."""
    fields = dict(fields or {})
    unknown = set(fields) - RESULT_FIELDS
    if unknown:
        raise ValueError(f"backup_transition records only {sorted(RESULT_FIELDS)}, not {sorted(unknown)}")
    locked = BackupLog.objects.select_for_update().get(pk=backup.pk)
    BACKUP_MACHINE.check(locked.status, to)
    for name, value in fields.items():
        setattr(locked, name, value)
    BACKUP_MACHINE.authorise(locked.pk)
    locked.status = to
    locked.save(update_fields=["status", "updated_at", *fields])
    return locked


def backup_run(*, backup_id: UUID, progress=None) -> BackupLog:
    """Dump the live database into the `running` backup `backup_id`.

    Not atomic on purpose: it holds no Django transaction while pg_dump runs. Idempotent: a
    backup that is no longer `running` is returned unchanged. Never raises for a failed dump:
    the row is `failed` with the error (and an ERROR log line); the partial file is deleted.
    """
    backup = BackupLog.objects.get(pk=backup_id)
    if backup.status != BackupLog.Status.RUNNING or backup.file_name:
        return backup
    storage = storages[backup.storage]
    # Per run: a redelivered task dumping the same backup at once never shares a file with this one.
    run = uuid4().hex[:8]
    temp_name = f"incoming/{backup.pk.hex}-{run}.dump.partial"
    saved_temp = None
    outcome = BackupLog.Status.FAILED
    try:
        _, backup.server_version = pg.server_version()
        backup.pg_dump_version = pg.tool_version("pg_dump")
        with pg.connect(autocommit=False) as snap_conn, tempfile.TemporaryFile() as stderr:
            snap_conn.isolation_level = IsolationLevel.REPEATABLE_READ
            snap_conn.read_only = True
            snapshot_id = snap_conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            backup.row_counts = pg.row_counts(snap_conn)
            cmd = [
                pg.binary("pg_dump"),
                "-Fc",
                f"--snapshot={snapshot_id}",
                "--no-password",
                "--dbname",
                backup.database,
            ]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, env=pg.client_env())
            reader = _HashingReader(proc.stdout, progress)
            try:
                saved_temp = storage.save(temp_name, File(reader, name=temp_name))
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            finally:
                proc.stdout.close()
            code = proc.wait()
            snap_conn.rollback()
            if code != 0:
                stderr.seek(0)
                raise BackupError(
                    f"pg_dump exited {code}: {stderr.read().decode(errors='replace').strip()[:4000]}"
                )
        backup.file_name = _promote(storage, saved_temp, _final_name(backup, run))
        saved_temp = None
        backup.sha256, backup.size = reader.sha256.hexdigest(), reader.size
        outcome = BackupLog.Status.SUCCEEDED
    except Exception as exc:
        outcome, backup.error = BackupLog.Status.FAILED, f"{type(exc).__name__}: {exc}"[:10_000]
        backup.file_name, backup.sha256 = "", ""
        logger.error("backup %s (%s) failed: %s", backup.pk, backup.kind, backup.error)
    finally:
        if saved_temp is not None or outcome == BackupLog.Status.FAILED:
            _delete_quietly(storage, saved_temp or temp_name)
    backup.finished_at = timezone.now()
    backup.duration = backup.finished_at - backup.started_at
    try:
        backup = backup_transition(
            backup=backup, to=outcome, fields={name: getattr(backup, name) for name in RESULT_FIELDS}
        )
    except InvalidTransition:
        # Another run of the same backup ended it first (a redelivered task): its record stands,
        # and this run's archive goes.
        logger.warning("backup %s was already ended by another run; this run's result is dropped", backup.pk)
        if backup.file_name:
            _delete_quietly(storage, backup.file_name)
        return BackupLog.objects.get(pk=backup.pk)
    if backup.status == BackupLog.Status.SUCCEEDED:
        logger.info("backup %s (%s): %s bytes, sha256 %s", backup.pk, backup.kind, backup.size, backup.sha256)
    return backup


def _delete_quietly(storage, name: str) -> None:
    try:
        if storage.exists(name):
            storage.delete(name)
    except Exception:
        logger.exception("could not delete the partial backup file %s", name)


def backup_create(*, kind: str = BackupLog.Kind.MANUAL, created_by=None, progress=None) -> BackupLog:
    """Start and run a backup now (see backup_run). Returns the row, `succeeded` or `failed`."""
    backup = backup_start(kind=kind, created_by=created_by)
    return backup_run(backup_id=backup.pk, progress=progress)


@contextmanager
def _local_archive(backup: BackupLog):
    """A local path of the archive: the file itself on a local storage, else a downloaded copy."""
    storage = storages[backup.storage]
    try:
        yield storage.path(backup.file_name)
        return
    except NotImplementedError:
        pass
    with tempfile.NamedTemporaryFile(suffix=".dump") as tmp, storage.open(backup.file_name, "rb") as src:
        shutil.copyfileobj(src, tmp, CHUNK)
        tmp.flush()
        yield tmp.name


def _sha256_of(path: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while data := fh.read(CHUNK):
            digest.update(data)
            size += len(data)
    return digest.hexdigest(), size


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, env=pg.client_env())
    if result.returncode != 0:
        raise BackupError(
            f"{Path(cmd[0]).name} exited {result.returncode}: "
            f"{result.stderr.decode(errors='replace').strip()[:4000]}"
        )
    return result


def _verifiable(backup: BackupLog) -> None:
    if backup.status != BackupLog.Status.SUCCEEDED:
        raise Conflict(
            f"Backup {backup.pk} is {backup.status}; only a succeeded backup can be verified.",
            code="backup_not_succeeded",
        )


def credit_invariant_violations(conn) -> int:
    """Users whose balance differs from the sum of their ledger (read from credits' models)."""
    from credits.models import CreditBalance, CreditTransaction

    balances, ledger = CreditBalance._meta.db_table, CreditTransaction._meta.db_table
    user_col = CreditBalance._meta.get_field("user").column
    ledger_user = CreditTransaction._meta.get_field("user").column
    return conn.execute(
        f"""
        SELECT count(*) FROM {balances} b
        FULL JOIN (SELECT {ledger_user} AS user_id, SUM(amount) AS total FROM {ledger}
                   GROUP BY {ledger_user}) l ON l.user_id = b.{user_col}
        WHERE COALESCE(b.balance, 0) <> COALESCE(l.total, 0)
        """
    ).fetchone()[0]


def restore_archive(*, path: str, database: str, jobs: int = 1) -> None:
    """pg_restore an archive into an existing, empty database; raises BackupError on failure."""
    cmd = [
        pg.binary("pg_restore"),
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--no-password",
        "--dbname",
        database,
    ]
    if jobs > 1:
        cmd.append(f"--jobs={jobs}")
    _run([*cmd, path])


def backup_verify(*, backup: BackupLog, restore_test: bool = False, progress=None) -> BackupLog:
    """Check a backup: its sha256 again and `pg_restore --list`; with `restore_test`, restore it
    into a scratch database, compare every table's row count with the counts taken at dump time,
    check balance = SUM(ledger) for every user there, then drop the scratch database (always).

    Sets verified_at / restore_tested_at on success. On failure records the error on the row,
    logs at ERROR and raises BackupError. Raises Conflict for a backup that did not succeed.
    """
    _verifiable(backup)
    say = progress or (lambda message: None)
    try:
        with _local_archive(backup) as path:
            say("checking sha256")
            digest, size = _sha256_of(path)
            if digest != backup.sha256 or size != backup.size:
                raise BackupError(
                    f"checksum mismatch: stored {backup.sha256} ({backup.size} bytes), "
                    f"read {digest} ({size} bytes)"
                )
            say("reading the archive's table of contents (pg_restore --list)")
            toc = _run([pg.binary("pg_restore"), "--list", path]).stdout
            if b"TABLE DATA" not in toc:
                raise BackupError("pg_restore --list shows no table data")
            backup.verified_at = timezone.now()
            if restore_test:
                backup.restore_test_result = _restore_test(backup=backup, path=path, say=say)
                backup.restore_tested_at = timezone.now()
    except Exception as exc:
        backup.error = f"verification failed: {type(exc).__name__}: {exc}"[:10_000]
        backup.save(update_fields=["error", "updated_at"])
        logger.error("backup %s verification failed: %s", backup.pk, exc)
        raise exc if isinstance(exc, BackupError) else BackupError(str(exc)) from exc
    backup.save(update_fields=["verified_at", "restore_tested_at", "restore_test_result", "updated_at"])
    return backup


def _restore_test(*, backup: BackupLog, path: str, say) -> dict:
    scratch = pg.scratch_name()
    say(f"restoring into scratch database {scratch}")
    pg.create_database(scratch)
    try:
        restore_archive(path=path, database=scratch)
        say("comparing row counts")
        with pg.connect(dbname=scratch, autocommit=True) as conn:
            restored = pg.row_counts(conn)
            violations = credit_invariant_violations(conn)
        mismatches = {
            table: {"at_dump": expected, "restored": restored.get(table)}
            for table, expected in backup.row_counts.items()
            if restored.get(table) != expected
        }
        extra = sorted(set(restored) - set(backup.row_counts))
        if mismatches or extra:
            raise BackupError(f"row counts differ after restore: {mismatches} unexpected tables: {extra}")
        if violations:
            raise BackupError(f"credit invariant broken in the restored copy for {violations} users")
        return {"tables": len(restored), "rows": sum(restored.values()), "credit_invariant": "holds"}
    finally:
        say(f"dropping scratch database {scratch}")
        pg.drop_database(scratch)


def backup_restore(*, backup: BackupLog, database: str, progress=None, dry_run: bool = False) -> None:
    """Restore a backup into a NEW database `database` (created here).

    Raises Conflict(backup_not_succeeded) for a backup that did not succeed,
    ApplicationError(validation_error) for a bad name, Conflict(database_exists) for the live
    database or any existing one; BackupError when the archive does not match its sha256 or
    pg_restore fails (the half-restored database is dropped again). With `dry_run`, makes every
    one of these checks up to the archive's checksum, then stops before creating the database.
    """
    _verifiable(backup)
    if not pg.DB_NAME_RE.match(database):
        raise ApplicationError(
            "Invalid database name.",
            code="validation_error",
            fields={"database": ["Letters, digits and _ only, at most 63."]},
        )
    if database == pg.live_database():
        raise Conflict("Refusing to restore over the live database.", code="database_exists")
    if pg.database_exists(database):
        raise Conflict(
            f"Database {database} already exists; restore only into a new one.", code="database_exists"
        )
    say = progress or (lambda message: None)
    with _local_archive(backup) as path:
        digest, _ = _sha256_of(path)
        if digest != backup.sha256:
            raise BackupError("checksum mismatch: the archive is not the one that was written")
        if dry_run:
            return
        say(f"creating database {database}")
        pg.create_database(database)
        try:
            say("running pg_restore")
            restore_archive(path=path, database=database)
        except BaseException:
            pg.drop_database(database)
            raise
    logger.info("backup %s restored into database %s", backup.pk, database)


def backup_latest_verified() -> BackupLog | None:
    return (
        BackupLog.objects.filter(status=BackupLog.Status.SUCCEEDED, verified_at__isnull=False)
        .order_by("-started_at", "-id")
        .first()
    )


def backup_prune_plan(*, now: datetime | None = None) -> list[BackupLog]:
    """Backups retention would delete now: daily (and manual) ones older than BACKUP_KEEP_DAILY
    days, weekly ones older than BACKUP_KEEP_WEEKLY weeks, failed ones older than the daily
    window; never the newest verified backup."""
    now = now or timezone.now()
    daily_cutoff = now - timedelta(days=settings.BACKUP_KEEP_DAILY)
    weekly_cutoff = now - timedelta(weeks=settings.BACKUP_KEEP_WEEKLY)
    keep = backup_latest_verified()
    doomed = []
    for backup in BackupLog.objects.exclude(status=BackupLog.Status.RUNNING).order_by("started_at", "id"):
        cutoff = (
            weekly_cutoff
            if (backup.kind == BackupLog.Kind.WEEKLY and backup.status == BackupLog.Status.SUCCEEDED)
            else daily_cutoff
        )
        if backup.started_at < cutoff and (keep is None or backup.pk != keep.pk):
            doomed.append(backup)
    return doomed


def backup_prune(*, now: datetime | None = None, dry_run: bool = False) -> list[BackupLog]:
    """Apply retention (see backup_prune_plan): delete each archive from its storage and every
    offsite copy, then the row. Returns what was (or, with dry_run, would be) deleted."""
    doomed = backup_prune_plan(now=now)
    if dry_run:
        return doomed
    for backup in doomed:
        if backup.file_name:
            _delete_quietly(storages[backup.storage], backup.file_name)
            for status in backup.sync_statuses.all():
                if status.target in settings.STORAGES:
                    _delete_quietly(storages[status.target], backup.file_name)
        pk = backup.pk
        backup.delete()
        backup.pk = pk  # the caller reports which backups went
        logger.info("backup %s (%s, %s) pruned", backup.pk, backup.kind, backup.started_at.isoformat())
    return doomed


def offsite_sync(*, backup: BackupLog, targets: list[str] | None = None) -> list[SyncStatus]:
    """Copy a succeeded backup to every offsite storage (BACKUP_OFFSITE_STORAGES) not yet synced.

    One SyncStatus per (backup, target): `pending` while copying, then `synced` (synced_at, lag)
    or `failed` (error, logged at ERROR; the retry schedule tries again). A copy whose size
    differs from the archive's is deleted and counts as failed. Safe to run twice.
    """
    if backup.status != BackupLog.Status.SUCCEEDED:
        return []
    results = []
    for target in targets if targets is not None else settings.BACKUP_OFFSITE_STORAGES:
        status, _ = SyncStatus.objects.get_or_create(backup=backup, target=target)
        if status.status == SyncStatus.Status.SYNCED:
            results.append(status)
            continue
        status.attempts += 1
        try:
            source, dest = storages[backup.storage], storages[target]
            if dest.exists(backup.file_name):
                dest.delete(backup.file_name)
            with source.open(backup.file_name, "rb") as fh:
                name = dest.save(backup.file_name, File(fh, name=backup.file_name))
            if dest.size(name) != backup.size:
                dest.delete(name)
                raise BackupError(f"copy has {dest.size(name)} bytes, the archive {backup.size}")
            status.status, status.error = SyncStatus.Status.SYNCED, ""
            status.synced_at = timezone.now()
            status.lag = status.synced_at - (backup.finished_at or backup.started_at)
        except Exception as exc:
            status.status, status.error = SyncStatus.Status.FAILED, f"{type(exc).__name__}: {exc}"[:10_000]
            logger.error("offsite copy of backup %s to %s failed: %s", backup.pk, target, status.error)
        status.save()
        results.append(status)
    return results


def offsite_sync_pending() -> dict:
    """Retry every offsite copy not yet synced (and start missing ones) for kept backups."""
    counts = {"synced": 0, "failed": 0}
    for backup in BackupLog.objects.filter(status=BackupLog.Status.SUCCEEDED).order_by("started_at"):
        done = set(
            backup.sync_statuses.filter(status=SyncStatus.Status.SYNCED).values_list("target", flat=True)
        )
        todo = [t for t in settings.BACKUP_OFFSITE_STORAGES if t not in done]
        for status in offsite_sync(backup=backup, targets=todo) if todo else []:
            counts[status.status] = counts.get(status.status, 0) + 1
    return counts
