"""Our backup and restore test vs plain pg_dump -Fc / pg_restore of the same ≥ 1 GB database.

    .venv/bin/python bench/backups.py [--ledger-rows 1500000] [--size-gb 1.1] [--rounds 1]

Creates its own database `bench_backups` (dropped at the end, with every scratch database and
archive). Loads it set-based: `--ledger-rows` credit ledger rows over 200 users (balances
rebuilt as SUM(ledger), so the restore test's invariant holds) plus a filler table of
`repeat(md5(i))` rows until the database is at least `--size-gb` GB. Then, per round, in turn:

- plain dump: `pg_dump -Fc -f <file>` of the database;
- ours: `backups.services.backup_create` (REPEATABLE READ snapshot exported, every table counted
  in it, `pg_dump -Fc --snapshot` streamed to the `backups` storage while hashed, renamed);
- plain restore: CREATE DATABASE + `pg_restore` of the plain archive + DROP DATABASE;
- ours: `backup_verify --restore-test` (sha256 re-read, `pg_restore --list`, CREATE DATABASE,
  pg_restore, every table counted and compared, credit invariant, DROP DATABASE).

Prints seconds and the ratio ours/plain. Target ≤ 1.1× plain for both.
"""

import argparse
import os
import shutil
import subprocess
import tempfile
import time

from harness import close_django_connections, configure, connect, create_database, drop_database, setup_django

DB = "bench_backups"


def load(ledger_rows: int, size_gb: float) -> int:
    from django.contrib.auth.hashers import make_password

    from accounts.models import User
    from credits.models import CreditBalance, CreditTransaction

    password = make_password("bench-password-1")  # hashed once: 200 hashes would dominate the load
    users = User.objects.bulk_create(
        User(email=f"bench{i}@example.com", password=password) for i in range(200)
    )
    ids = [str(u.pk) for u in users]
    ledger, balances = CreditTransaction._meta.db_table, CreditBalance._meta.db_table
    with connect(DB, autocommit=True) as conn:
        conn.execute(
            f"""
            INSERT INTO {ledger} (id, created_at, updated_at, user_id, type, amount, balance_after,
                                  idempotency_key, reason)
            SELECT gen_random_uuid(), now() - (i %% 700) * interval '1 hour', now(),
                   (%(users)s::uuid[])[1 + i %% 200], 'bonus', 1 + i %% 50, 1 + i %% 50,
                   'bench:' || i, 'benchmark load'
              FROM generate_series(1, %(n)s) AS i
            """,
            {"users": ids, "n": ledger_rows},
        )
        conn.execute(f"DELETE FROM {balances}")
        conn.execute(
            f"""INSERT INTO {balances} (id, created_at, updated_at, user_id, balance, lifetime_bonus)
                SELECT gen_random_uuid(), now(), now(), user_id, SUM(amount), SUM(amount)
                  FROM {ledger} GROUP BY user_id"""
        )
        conn.execute("CREATE TABLE bench_backup_filler (id bigint PRIMARY KEY, body text NOT NULL)")
        start = 0
        while conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] < size_gb * 1024**3:
            conn.execute(
                "INSERT INTO bench_backup_filler SELECT i, repeat(md5(i::text), 8) "
                "FROM generate_series(%s, %s) AS i",
                [start + 1, start + 500_000],
            )
            start += 500_000
        conn.execute("VACUUM ANALYZE")
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ledger-rows", type=int, default=1_500_000)
    parser.add_argument("--size-gb", type=float, default=1.1)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="bench-backups-")
    env = configure(DB)
    os.environ["BACKUP_ROOT"] = env["BACKUP_ROOT"] = os.path.join(workdir, "storage")
    create_database(DB)
    try:
        setup_django()
        from backups import pg, services

        t = time.perf_counter()
        size = load(args.ledger_rows, args.size_gb)
        print(f"database {DB}: {size / 1024**3:.2f} GB, loaded in {time.perf_counter() - t:.0f} s")
        dump, client_env = pg.binary("pg_dump"), pg.client_env()
        restore = pg.binary("pg_restore")
        print(pg.tool_version("pg_dump"))
        plain_file = os.path.join(workdir, "plain.dump")
        rows, backup = [], None
        for rnd in range(1, args.rounds + 1):
            plain_dump = timed(
                lambda: subprocess.run(
                    [dump, "-Fc", "-f", plain_file, "--dbname", DB], env=client_env, check=True
                )
            )
            start = time.perf_counter()
            backup = services.backup_create(kind="manual")
            our_dump = time.perf_counter() - start
            assert backup.status == "succeeded", backup.error
            scratch = pg.scratch_name()
            start = time.perf_counter()
            pg.create_database(scratch)
            subprocess.run(
                [
                    restore,
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    "--dbname",
                    scratch,
                    plain_file,
                ],
                env=client_env,
                check=True,
            )
            pg.drop_database(scratch)
            plain_rt = time.perf_counter() - start
            start = time.perf_counter()
            services.backup_verify(backup=backup, restore_test=True)
            our_rt = time.perf_counter() - start
            rows.append((rnd, plain_dump, our_dump, plain_rt, our_rt, backup.size))
            os.remove(plain_file)
        print(
            f"{'round':>5} {'pg_dump s':>10} {'ours s':>8} {'ratio':>6} {'pg_restore s':>13} "
            f"{'ours s':>8} {'ratio':>6} {'archive MB':>11}"
        )
        for rnd, pd, od, pr, orr, osize in rows:
            print(
                f"{rnd:>5} {pd:>10.1f} {od:>8.1f} {od / pd:>6.2f} {pr:>13.1f} {orr:>8.1f} {orr / pr:>6.2f} "
                f"{osize / 1024**2:>11.0f}"
            )
        print(f"restore test: {backup.restore_test_result}")
    finally:
        close_django_connections()
        with connect("postgres", autocommit=True) as conn:
            for (name,) in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'backup_verify_%%'"
            ):
                drop_database(name)
        drop_database(DB)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
