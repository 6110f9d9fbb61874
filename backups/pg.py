"""PostgreSQL plumbing for backups: connection parameters, client binaries, scratch databases.

Everything here reads the database Django is connected to at runtime
(`connections["default"].settings_dict`), so under pytest it is the test database.
"""

import functools
import os
import re
import subprocess
import uuid
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connections
from psycopg import sql


def conn_kwargs(*, dbname: str | None = None) -> dict:
    cfg = connections["default"].settings_dict
    return {
        "host": cfg["HOST"] or "127.0.0.1",
        "port": int(cfg["PORT"] or 5432),
        "user": cfg["USER"] or "postgres",
        "password": cfg["PASSWORD"] or None,
        "dbname": dbname or cfg["NAME"],
    }


def live_database() -> str:
    return connections["default"].settings_dict["NAME"]


def connect(*, dbname: str | None = None, **kwargs) -> psycopg.Connection:
    return psycopg.connect(**conn_kwargs(dbname=dbname), **kwargs)


def client_env() -> dict:
    """Environment for pg_dump/pg_restore: the password travels in PGPASSWORD, never in argv."""
    kw = conn_kwargs()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"PGHOST": kw["host"], "PGPORT": str(kw["port"]), "PGUSER": kw["user"]})
    if kw["password"]:
        env["PGPASSWORD"] = kw["password"]
    return env


def server_version() -> tuple[int, str]:
    """(major, full version string) of the server."""
    with connect(autocommit=True) as conn:
        full = conn.execute("SHOW server_version").fetchone()[0]
        return conn.info.server_version // 10000, full


@functools.cache
def _default_bin_dir(major: int) -> str:
    candidate = Path(f"/usr/lib/postgresql/{major}/bin")
    return str(candidate) if (candidate / "pg_dump").exists() else ""


def binary(name: str) -> str:
    """Path of a PostgreSQL client tool: PG_BIN_DIR, else the server's major version's folder
    (/usr/lib/postgresql/<major>/bin) when present, else whatever PATH finds."""
    folder = settings.PG_BIN_DIR or _default_bin_dir(server_version()[0])
    return str(Path(folder) / name) if folder else name


def tool_version(name: str = "pg_dump") -> str:
    out = subprocess.run([binary(name), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def database_exists(name: str) -> bool:
    with connect(dbname="postgres", autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def create_database(name: str) -> None:
    with connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(name: str) -> None:
    if name == live_database():
        raise ValueError("refusing to drop the live database")
    with connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def scratch_name() -> str:
    return f"backup_verify_{uuid.uuid4().hex[:16]}"


DB_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def user_tables(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(schema, table) of every ordinary or partitioned table outside the system schemas."""
    return conn.execute(
        """
        SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
        ORDER BY 1, 2
        """
    ).fetchall()


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    counts = {}
    for schema, table in user_tables(conn):
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        key = table if schema == "public" else f"{schema}.{table}"
        counts[key] = conn.execute(query).fetchone()[0]
    return counts
