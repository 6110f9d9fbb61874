"""Point-in-time recovery from pgBackRest's repository (continuous WAL archiving).

`scripts/pitr_setup.sh` sets the archiving up on a self-hosted PostgreSQL; this restores the
cluster as it was at a moment into a NEW data directory and starts it on a port of its own,
beside the live one, which is never touched. pgBackRest picks the newest backup that finished
before the moment and PostgreSQL replays the archived WAL up to it, stopping before the first
transaction that committed after it (so the copy is transaction-consistent), then promotes the
copy to a server of its own with archiving off (it must not push WAL into the live stanza).
The credit invariant (balance = SUM(ledger) for every user) is checked in the copy.

Commands run as PITR_OS_USER (PostgreSQL refuses to run as root) when the app runs as root,
else as the current user, who must then be the owner of the repository (the database host's
`postgres` user).
"""

import json
import os
import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from django.conf import settings

from backups import pg
from backups.services.dumps import BackupError, credit_invariant_violations
from config.exceptions import ApplicationError, Conflict

RECOVERY_TIMEOUT_SECONDS = 3600


def _as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0 and settings.PITR_OS_USER:
        return ["runuser", "-u", settings.PITR_OS_USER, "--", *cmd]
    return cmd


def _pgbackrest(*args: str) -> list[str]:
    cmd = [settings.PGBACKREST_BIN]
    if settings.PGBACKREST_CONFIG:
        cmd.append(f"--config={settings.PGBACKREST_CONFIG}")
    return [*cmd, f"--stanza={settings.PGBACKREST_STANZA}", *args]


def _run(cmd: list[str], *, what: str, timeout: float | None = None) -> str:
    try:
        result = subprocess.run(_as_owner(cmd), capture_output=True, text=True, timeout=timeout, cwd="/")
    except FileNotFoundError as exc:
        raise BackupError(f"{what}: {exc.filename} is not installed") from None
    if result.returncode != 0:
        raise BackupError(
            f"{what} exited {result.returncode}: {(result.stderr or result.stdout).strip()[:4000]}"
        )
    return result.stdout


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _live_data_directory() -> str | None:
    try:
        with pg.connect(autocommit=True) as conn:
            return conn.execute("SHOW data_directory").fetchone()[0]
    except psycopg.Error:  # not a superuser: the live directory cannot be named, the other checks stand
        return None


def pitr_backups() -> list[dict]:
    """The repository's backups, oldest first: label, type, start and stop (UTC)."""
    out = _run(_pgbackrest("--output=json", "info"), what="pgbackrest info", timeout=120)
    stanzas = json.loads(out)
    backups = []
    for stanza in stanzas:
        for backup in stanza.get("backup", []):
            backups.append(
                {
                    "label": backup["label"],
                    "type": backup["type"],
                    "start": datetime.fromtimestamp(backup["timestamp"]["start"], tz=UTC),
                    "stop": datetime.fromtimestamp(backup["timestamp"]["stop"], tz=UTC),
                }
            )
    return sorted(backups, key=lambda b: b["stop"])


def _refuse(target_time: datetime, pgdata: Path, port: int) -> dict:
    """Every check the restore makes before it writes anything; returns the backup it will use."""
    if target_time.tzinfo is None:
        raise ApplicationError(
            "The time needs a timezone.",
            code="validation_error",
            fields={"to_time": ["Give the offset, e.g. 2026-11-22T10:41:00Z."]},
        )
    if not pgdata.is_absolute():
        raise ApplicationError(
            "The data directory must be an absolute path.",
            code="validation_error",
            fields={"pgdata": ["An absolute path, e.g. /var/lib/postgresql/15/restored."]},
        )
    if pgdata.exists() and (not pgdata.is_dir() or any(pgdata.iterdir())):
        raise Conflict(
            f"{pgdata} exists and is not empty; restore only into a new directory.", code="pgdata_exists"
        )
    live = _live_data_directory()
    if live and Path(live).resolve() == pgdata.resolve():
        raise Conflict("Refusing to restore over the live cluster's data directory.", code="pgdata_exists")
    if _port_in_use(port):
        raise Conflict(f"Something already listens on port {port}; pick a free one.", code="port_in_use")
    usable = [b for b in pitr_backups() if b["stop"] < target_time]
    if not usable:
        raise Conflict(
            "No backup in the repository finished before that time; pick a later time.",
            code="no_backup_before_time",
        )
    return usable[-1]


def pitr_restore(
    *, target_time: datetime, pgdata: str, port: int, progress=None, dry_run: bool = False
) -> dict:
    """Restore the cluster as it was at `target_time` into the new directory `pgdata`, start it on
    `port` (127.0.0.1, its socket in `pgdata`) and check the credit invariant in the copy of the
    app's database.

    Raises ApplicationError(validation_error) for a naive time or a relative path,
    Conflict(pgdata_exists) for a non-empty directory or the live one, Conflict(port_in_use),
    Conflict(no_backup_before_time); BackupError when pgBackRest or the recovery fails (e.g. the
    archive does not reach that time yet: WAL is archived at most `archive_timeout` late).
    With `dry_run`, makes the checks and returns the plan. Returns what was done, with timings.
    """
    say = progress or (lambda message: None)
    target = Path(pgdata)
    backup = _refuse(target_time, target, port)
    plan = {
        "backup": backup["label"],
        "backup_finished": backup["stop"].isoformat(),
        "to_time": target_time.astimezone(UTC).isoformat(),
        "pgdata": str(target),
        "port": port,
    }
    if dry_run:
        return plan
    if not target.exists():
        target.mkdir(mode=0o700, parents=True)
        if os.geteuid() == 0 and settings.PITR_OS_USER:
            shutil.chown(target, user=settings.PITR_OS_USER)
    started = time.monotonic()
    say(f"restoring backup {backup['label']} into {target}")
    _run(
        _pgbackrest(
            f"--pg1-path={target}",
            "--type=time",
            f"--target={target_time.astimezone(UTC).isoformat(sep=' ')}",
            "--target-action=promote",
            "restore",
        ),
        what="pgbackrest restore",
    )
    restored = time.monotonic()
    say(f"replaying WAL up to {plan['to_time']} (server on 127.0.0.1:{port})")
    options = f"-p {port} -k {target} -c listen_addresses=127.0.0.1 -c archive_mode=off"
    _run(
        [
            pg.binary("pg_ctl"),
            "-D",
            str(target),
            "-l",
            str(target / "restore.log"),
            "-w",
            "-t",
            str(RECOVERY_TIMEOUT_SECONDS),
            "-o",
            options,
            "start",
        ],
        what=f"the restored server (see {target / 'restore.log'})",
    )
    _wait_promoted(port)
    recovered = time.monotonic()
    database = pg.live_database()
    with psycopg.connect(**{**pg.conn_kwargs(dbname=database), "host": "127.0.0.1", "port": port}) as conn:
        violations = credit_invariant_violations(conn)
        rows = sum(pg.row_counts(conn).values())
    if violations:
        raise BackupError(f"credit invariant broken in the restored copy for {violations} users")
    say(f"restored: {rows} rows in {database}, balance = SUM(ledger) for every user")
    return {
        **plan,
        "database": database,
        "rows": rows,
        "credit_invariant": "holds",
        "restore_seconds": round(restored - started, 2),
        "recovery_seconds": round(recovered - restored, 2),
    }


def _wait_promoted(port: int) -> None:
    deadline = time.monotonic() + RECOVERY_TIMEOUT_SECONDS
    kwargs = {**pg.conn_kwargs(dbname="postgres"), "host": "127.0.0.1", "port": port, "autocommit": True}
    while time.monotonic() < deadline:
        with psycopg.connect(**kwargs) as conn:
            if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                return
        time.sleep(0.2)
    raise BackupError(
        f"the restored server on port {port} was still recovering after {RECOVERY_TIMEOUT_SECONDS} s"
    )
