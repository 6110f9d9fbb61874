"""The backup state machine: `running → succeeded | failed` (backups/states.py), one writer
(`backup_transition`), held by a trigger on the backups table."""

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from backups import services
from backups.models import BackupLog
from backups.states import BACKUP_TRANSITIONS
from config.exceptions import InvalidTransition
from tests.credits.conftest import run_in_threads

pytestmark = pytest.mark.django_db

ALLOWED = [(a, b) for a, targets in BACKUP_TRANSITIONS.items() for b in sorted(targets)]
REFUSED = [(a, b) for a in BACKUP_TRANSITIONS for b in BACKUP_TRANSITIONS if b not in BACKUP_TRANSITIONS[a]]
ARCHIVE = {"file_name": "2026/12/01/db-manual.dump", "sha256": "ab" * 32, "size": 10}


def _backup(status="running"):
    fields = ARCHIVE if status == "succeeded" else {}
    return BackupLog.objects.create(started_at=timezone.now(), status=status, **fields)


@pytest.mark.parametrize(("start", "to"), ALLOWED)
def test_every_move_in_the_table_is_allowed_and_records_its_result(start, to):
    backup = _backup(start)
    fields = ARCHIVE if to == "succeeded" else {"error": "pg_dump exited 1"}

    moved = services.backup_transition(backup=backup, to=to, fields=fields)

    stored = BackupLog.objects.get(pk=backup.pk)
    assert moved.status == to == stored.status
    assert all(getattr(stored, name) == value for name, value in fields.items())


@pytest.mark.parametrize(("start", "to"), REFUSED)
def test_every_move_outside_the_table_is_a_409(start, to):
    backup = _backup(start)

    with pytest.raises(InvalidTransition) as caught:
        services.backup_transition(backup=backup, to=to, fields=ARCHIVE)

    assert (caught.value.status_code, caught.value.code) == (409, "invalid_transition")
    assert BackupLog.objects.get(pk=backup.pk).status == start


def test_only_result_fields_are_recorded_with_a_move():
    backup = _backup()

    with pytest.raises(ValueError, match="records only"):
        services.backup_transition(backup=backup, to="failed", fields={"kind": "daily"})

    assert BackupLog.objects.get(pk=backup.pk).status == "running"


def test_bare_status_writes_are_refused_by_the_database():
    backup = _backup()

    with pytest.raises(DatabaseError, match="backup_transition"), transaction.atomic():
        BackupLog.objects.filter(pk=backup.pk).update(status="failed")
    backup.status = "failed"
    with pytest.raises(DatabaseError, match="backup_transition"), transaction.atomic():
        backup.save()

    assert BackupLog.objects.get(pk=backup.pk).status == "running"


@pytest.mark.django_db(transaction=True)
def test_concurrent_ends_of_one_backup_record_one_result():
    backup = _backup()

    results = run_in_threads(
        lambda i: services.backup_transition(backup=backup, to="failed", fields={"error": f"run {i}"}),
        [(i,) for i in range(6)],
    )

    ended = [r for r in results if isinstance(r, BackupLog)]
    assert len(ended) == 1 and all(isinstance(r, InvalidTransition) for r in results if r not in ended)
    assert BackupLog.objects.get(pk=backup.pk).error == ended[0].error


@pytest.mark.django_db(transaction=True)
def test_two_runs_of_one_backup_at_once_leave_one_result_and_its_archive_only(backup_root):
    import hashlib

    from tests.backups.conftest import files_under

    # given a queued backup whose task is delivered twice at once
    backup = services.backup_start()

    # when both runs dump it
    results = run_in_threads(lambda: services.backup_run(backup_id=backup.pk), [()] * 2)

    # then one run's result stands, the other's archive is gone, and the stored one is intact
    assert all(isinstance(r, BackupLog) for r in results), results
    stored = BackupLog.objects.get(pk=backup.pk)
    assert stored.status == "succeeded" and {r.file_name for r in results} == {stored.file_name}
    assert files_under(backup_root) == [stored.file_name]
    assert hashlib.sha256((backup_root / stored.file_name).read_bytes()).hexdigest() == stored.sha256
