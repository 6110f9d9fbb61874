"""Scratch PostgreSQL clusters for tests that need a server of their own (point-in-time
recovery, streaming replicas): initdb under a short temporary folder, a free port, trust
authentication on 127.0.0.1. PostgreSQL refuses to run as root, so its programs run as the
`postgres` user when the tests run as root."""

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from backups import pg


def as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def run(cmd: list[str], **kwargs) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, cwd="/", timeout=300, **kwargs)
    assert result.returncode == 0, f"{cmd[:6]} exited {result.returncode}: {result.stderr}{result.stdout}"
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Cluster:
    root: Path  # the temporary folder: data directories, sockets, logs
    port: int
    bin: Path
    data: Path

    def connect(self, dbname: str = "postgres", port: int | None = None) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=port or self.port, user="postgres", dbname=dbname, autocommit=True
        )

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        run(
            as_postgres(
                [
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.data.parent / f"{self.data.name}.log"),
                    "-w",
                    "start",
                    "-o",
                    f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1",
                ]
            )
        )

    def stop(self, data: Path | None = None) -> None:
        data = data or self.data
        if (data / "postmaster.pid").exists():
            subprocess.run(
                as_postgres([str(self.bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                capture_output=True,
                cwd="/",
            )

    def copy_database(self, database: str) -> None:
        """A copy of `database` of the test server (schema and rows), under the same name."""
        dump = self.root / "seed.dump"
        run([pg.binary("pg_dump"), "-Fc", "-f", str(dump), database], env=pg.client_env())
        os.chmod(dump, 0o644)
        run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", database])
        run(
            [
                pg.binary("pg_restore"),
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                str(dump),
            ]
        )


@contextmanager
def scratch_cluster():
    """A new cluster, started; stopped (with every other data directory under its folder) and
    deleted afterwards."""
    bindir = Path(pg.binary("pg_ctl")).parent
    root = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))  # short: socket paths are limited
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
    cluster = Cluster(root=root, port=free_port(), bin=bindir, data=root / "data")
    run(
        as_postgres(
            [str(bindir / "initdb"), "-D", str(cluster.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        )
    )
    cluster.start()
    try:
        yield cluster
    finally:
        for data in sorted(root.glob("*/postmaster.pid")):
            cluster.stop(data.parent)
        shutil.rmtree(root, ignore_errors=True)
