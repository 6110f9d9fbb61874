"""Retention with a clock we control, and offsite copies to a second (and a failing) storage."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from backups import services
from backups.models import BackupLog, SyncStatus
from tests.backups.conftest import files_under, storage_conf

NOW = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)


def stored_backup(kind="daily", *, age: timedelta, verified=True, status="succeeded") -> BackupLog:
    started = NOW - age
    name = f"{started:%Y%m%dT%H%M}-{kind}.dump" if status == "succeeded" else ""
    if name:
        storages["backups"].save(name, ContentFile(b"PGDMP fake archive " + name.encode()))
    return BackupLog.objects.create(
        kind=kind,
        status=status,
        started_at=started,
        finished_at=started + timedelta(minutes=1),
        file_name=name,
        sha256="ab" * 32 if name else "",
        size=19 + len(name) if name else None,
        verified_at=started + timedelta(minutes=2) if verified and name else None,
    )


@pytest.mark.django_db
def test_retention_keeps_7_days_of_dailies_and_8_weeks_of_weeklies(backup_root):
    # given
    fresh_daily = stored_backup(age=timedelta(days=6, hours=23))
    old_daily = stored_backup(age=timedelta(days=7, hours=1))
    fresh_weekly = stored_backup("weekly", age=timedelta(weeks=7, days=6))
    old_weekly = stored_backup("weekly", age=timedelta(weeks=8, hours=1))
    old_failed = stored_backup(age=timedelta(days=9), status="failed")
    old_manual = stored_backup("manual", age=timedelta(days=8))
    # when
    pruned = services.backup_prune(now=NOW)
    # then
    assert {b.pk for b in pruned} == {old_daily.pk, old_weekly.pk, old_failed.pk, old_manual.pk}
    assert set(BackupLog.objects.values_list("pk", flat=True)) == {fresh_daily.pk, fresh_weekly.pk}
    assert files_under(backup_root) == sorted([fresh_daily.file_name, fresh_weekly.file_name])


@pytest.mark.django_db
def test_retention_never_deletes_the_newest_verified_backup(backup_root):
    # given: every backup is past retention, and the newest ones were never verified
    newest_verified = stored_backup(age=timedelta(days=30))
    unverified = stored_backup(age=timedelta(days=20), verified=False)
    older = stored_backup(age=timedelta(days=40))
    # when
    pruned = services.backup_prune(now=NOW)
    # then
    assert {b.pk for b in pruned} == {unverified.pk, older.pk}
    assert list(BackupLog.objects.values_list("pk", flat=True)) == [newest_verified.pk]
    assert files_under(backup_root) == [newest_verified.file_name]


@pytest.mark.django_db
def test_prune_dry_run_deletes_nothing(backup_root):
    stored_backup(age=timedelta(days=30))
    stored_backup(age=timedelta(days=31))
    assert len(services.backup_prune(now=NOW, dry_run=True)) == 1
    assert BackupLog.objects.count() == 2 and len(files_under(backup_root)) == 2


@pytest.fixture
def offsite(settings, backup_root, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "broken": storage_conf(tmp_path / "broken", "tests.backups.storages.BrokenStorage"),
    }
    settings.BACKUP_OFFSITE_STORAGES = ["offsite", "broken"]
    return tmp_path / "offsite"


@pytest.mark.django_db
def test_offsite_copy_to_a_second_storage_and_a_failing_one(offsite, caplog):
    backup = stored_backup(age=timedelta(hours=2))
    # when
    with caplog.at_level(logging.ERROR):
        statuses = {s.target: s for s in services.offsite_sync(backup=backup)}
    # then: the good copy is byte-identical and tracked; the failure is recorded and logged
    assert statuses["offsite"].status == SyncStatus.Status.SYNCED
    assert statuses["offsite"].synced_at and statuses["offsite"].lag > timedelta(0)
    assert (offsite / backup.file_name).read_bytes() == storages["backups"].open(backup.file_name).read()
    assert (
        statuses["broken"].status == SyncStatus.Status.FAILED and "AccessDenied" in statuses["broken"].error
    )
    assert any("broken" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


@pytest.mark.django_db
def test_offsite_retry_copies_what_failed_once_the_target_works_and_leaves_synced_ones(
    offsite, settings, tmp_path
):
    backup = stored_backup(age=timedelta(hours=2))
    services.offsite_sync(backup=backup)
    synced_at = SyncStatus.objects.get(target="offsite").synced_at
    # when: the broken target is repaired and the retry runs
    settings.STORAGES = {**settings.STORAGES, "broken": storage_conf(tmp_path / "repaired")}
    counts = services.offsite_sync_pending()
    # then
    assert counts == {"synced": 1, "failed": 0}
    broken = SyncStatus.objects.get(target="broken")
    assert broken.status == "synced" and broken.attempts == 2 and broken.error == ""
    assert SyncStatus.objects.get(target="offsite").synced_at == synced_at
    assert files_under(tmp_path / "repaired") == [backup.file_name]


@pytest.mark.django_db
def test_pruning_a_backup_deletes_its_offsite_copies(offsite):
    backup = stored_backup(age=timedelta(days=30), verified=False)
    stored_backup(age=timedelta(days=1))
    services.offsite_sync(backup=backup)
    services.backup_prune(now=NOW)
    assert files_under(offsite) == []
