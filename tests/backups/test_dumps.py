"""Database backups against the real test database: dump, verify, restore, failures."""

import logging

import pytest

from backups import pg, services
from backups.models import BackupLog
from config.exceptions import Conflict
from credits.models import CreditTransaction
from credits.services.ledger import credits_grant
from shops.models import StockHistory
from shops.services.stock import item_delete, stock_update
from tests.backups.conftest import files_under, storage_conf
from tests.factories import UserFactory
from tests.shops.factories import make_item, make_shop

pytestmark = pytest.mark.django_db(transaction=True)

LEDGER_SQL = (
    f"SELECT id::text, user_id::text, type, amount, balance_after, idempotency_key "
    f"FROM {CreditTransaction._meta.db_table} ORDER BY id"
)
STOCK_SQL = (
    f"SELECT id, item_id::text, change, quantity_before, quantity_after, reason, reference "
    f"FROM {StockHistory._meta.db_table} ORDER BY id"
)


def rows(sql: str, dbname: str | None = None) -> list[tuple]:
    with pg.connect(dbname=dbname, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def scratch_names(monkeypatch):
    """The scratch database names backup_verify picks during the test (other suites on the
    same server create scratch databases of their own meanwhile)."""
    picked = []

    def recording():
        picked.append(original())
        return picked[-1]

    original = pg.scratch_name
    monkeypatch.setattr(pg, "scratch_name", recording)
    return picked


def existing(names: list[str]) -> list[str]:
    with pg.connect(dbname="postgres", autocommit=True) as conn:
        found = conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", [names])
        return [row[0] for row in found]


@pytest.fixture
def scratch_db():
    names = []
    yield names.append
    for name in names:
        pg.drop_database(name)


def make_data():
    users = [UserFactory() for _ in range(3)]
    for n, user in enumerate(users):
        credits_grant(user=user, amount=100 + n, idempotency_key=f"backup-test:{user.pk}")
    shop = make_shop(owner=users[0])
    items = [make_item(shop, stock=10 + n) for n in range(3)]
    stock_update(item=items[0], change=-4)
    return users, shop, items


def test_backup_restores_the_state_at_backup_time_row_for_row(backup_root, scratch_db):
    # given: a ledger and stock history, backed up
    users, shop, items = make_data()
    ledger_then, stock_then = rows(LEDGER_SQL), rows(STOCK_SQL)
    backup = services.backup_create(kind="daily")
    assert backup.status == "succeeded", backup.error
    assert backup.row_counts[CreditTransaction._meta.db_table] == 3
    assert backup.row_counts[StockHistory._meta.db_table] == len(stock_then)
    assert backup.server_version and backup.pg_dump_version.startswith("pg_dump")
    # when: data changes and is deleted after the backup
    credits_grant(user=users[1], amount=7, idempotency_key="after-backup")
    stock_update(item=items[1], change=5)
    item_delete(item=items[2])
    assert rows(LEDGER_SQL) != ledger_then and rows(STOCK_SQL) != stock_then
    # and the backup is restored into a new database
    target = pg.scratch_name()
    scratch_db(target)
    services.backup_restore(backup=backup, database=target)
    # then: the restored copy is the state at backup time, row for row
    assert rows(LEDGER_SQL, target) == ledger_then
    assert rows(STOCK_SQL, target) == stock_then
    with pg.connect(dbname=target, autocommit=True) as conn:
        assert pg.row_counts(conn) == backup.row_counts
        assert services.dumps.credit_invariant_violations(conn) == 0


def test_verify_with_restore_test_compares_counts_and_drops_the_scratch_database(backup_root, scratch_names):
    make_data()
    backup = services.backup_create()
    # when
    services.backup_verify(backup=backup, restore_test=True)
    # then
    backup.refresh_from_db()
    assert backup.verified_at and backup.restore_tested_at
    assert backup.restore_test_result["credit_invariant"] == "holds"
    assert backup.restore_test_result["rows"] == sum(backup.row_counts.values())
    assert len(scratch_names) == 1 and existing(scratch_names) == []


def test_restore_test_fails_when_counts_differ_and_still_drops_the_scratch_database(
    backup_root, scratch_names
):
    make_data()
    backup = services.backup_create()
    backup.row_counts[CreditTransaction._meta.db_table] += 1  # the archive no longer matches what we expect
    backup.save()
    with pytest.raises(services.BackupError, match="row counts differ"):
        services.backup_verify(backup=backup, restore_test=True)
    backup.refresh_from_db()
    assert backup.restore_tested_at is None and "row counts differ" in backup.error
    assert len(scratch_names) == 1 and existing(scratch_names) == []


def test_verify_refuses_a_tampered_archive(backup_root):
    backup = services.backup_create()
    path = backup_root / backup.file_name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(services.BackupError, match="checksum mismatch"):
        services.backup_verify(backup=backup)
    backup.refresh_from_db()
    assert backup.verified_at is None


def test_archive_is_stored_under_its_final_name_with_its_sha256(backup_root):
    import hashlib

    backup = services.backup_create()
    assert files_under(backup_root) == [backup.file_name]
    data = (backup_root / backup.file_name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == backup.sha256 and len(data) == backup.size
    assert data[:5] == b"PGDMP"  # pg_dump's custom format


def _readyz(client):
    response = client.get("/readyz")
    return response.status_code, response.json()


def test_pg_dump_with_wrong_credentials_leaves_a_failed_log_and_no_file(
    backup_root, monkeypatch, caplog, client
):
    ready_before = _readyz(client)
    real_env = pg.client_env
    monkeypatch.setattr(pg, "client_env", lambda: {**real_env(), "PGUSER": "no_such_role_for_backups"})
    # when
    with caplog.at_level(logging.ERROR, logger="backups.services.dumps"):
        backup = services.backup_create()
    # then
    assert backup.status == "failed" and backup.file_name == "" and backup.sha256 == ""
    assert "no_such_role_for_backups" in backup.error
    assert BackupLog.objects.get(pk=backup.pk).status == "failed"
    assert files_under(backup_root) == []
    assert any(r.levelno == logging.ERROR and str(backup.pk) in r.getMessage() for r in caplog.records)
    assert _readyz(client) == ready_before


def test_disk_full_during_the_dump_leaves_a_failed_log_and_no_partial_file(
    settings, tmp_path, caplog, client
):
    root = tmp_path / "full"
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": storage_conf(root, "tests.backups.storages.TinyQuotaStorage", max_bytes=2048),
    }
    make_data()
    ready_before = _readyz(client)
    with caplog.at_level(logging.ERROR, logger="backups.services.dumps"):
        backup = services.backup_create()
    assert backup.status == "failed" and "No space left" in backup.error
    assert files_under(root) == []
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    assert _readyz(client) == ready_before
    # and no pg_dump is left running
    with pg.connect(dbname="postgres", autocommit=True) as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump'"
            ).fetchone()[0]
            == 0
        )


def test_restore_refuses_the_live_database_and_any_existing_one(backup_root):
    backup = services.backup_create()
    with pytest.raises(Conflict):
        services.backup_restore(backup=backup, database=pg.live_database())
    with pytest.raises(Conflict):
        services.backup_restore(backup=backup, database="postgres")


def test_counts_come_from_the_same_snapshot_as_the_dump(backup_root, monkeypatch):
    # given: a write lands after the snapshot is exported but before pg_dump starts
    users, _, _ = make_data()
    real_counts = pg.row_counts

    def counts_then_write(conn):
        counts = real_counts(conn)
        credits_grant(user=users[0], amount=1, idempotency_key="between-snapshot-and-dump")
        return counts

    monkeypatch.setattr(pg, "row_counts", counts_then_write)
    backup = services.backup_create()
    monkeypatch.setattr(pg, "row_counts", real_counts)
    # then: the archive holds exactly the counted rows (the restore test passes)
    assert backup.row_counts[CreditTransaction._meta.db_table] == 3
    services.backup_verify(backup=backup, restore_test=True)
