"""Staff backups API, admin pages, commands, and the schedules run by a real Celery worker."""

import time
from io import StringIO

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backups import pg, services
from backups.models import BackupLog, RecoverySnapshot, SyncStatus
from config.celery import app as celery_app
from config.models import ScheduledRun
from config.schedules import SCHEDULES
from tests.conftest import assert_error, client_for, finished_tasks
from tests.factories import UserFactory
from tests.shops.factories import make_item, make_shop

BACKUP_TASKS = {"backups.daily", "backups.weekly", "backups.retention", "backups.offsite_retry"}


def wait_for(predicate, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True)


@pytest.fixture
def broker():
    def purge():
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_purge("default")

    purge()
    yield celery_app
    purge()


def worker():
    return start_worker(
        celery_app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=["default"],
        shutdown_timeout=60,
        loglevel="WARNING",
    )


# --- schedules and tasks -----------------------------------------------------------------------


def test_every_backup_schedule_is_declared_with_its_time():
    by_task = {s.task: s for s in SCHEDULES if s.task in BACKUP_TASKS}
    assert set(by_task) == BACKUP_TASKS
    assert by_task["backups.daily"].crontab == {"minute": "0", "hour": "3"}
    assert by_task["backups.weekly"].crontab == {"minute": "0", "hour": "4", "day_of_week": "0"}
    assert by_task["backups.retention"].crontab == {"minute": "0", "hour": "5"}
    for name in BACKUP_TASKS | {"backups.run_backup"}:
        task = celery_app.tasks[name]
        assert task.queue == "default" and task.soft_time_limit < task.time_limit, name


@pytest.mark.django_db(transaction=True)
def test_daily_backup_runs_on_a_real_worker_once_per_day(
    backup_root, broker, settings, drop_other_connections
):
    from backups.tasks import daily_backup

    settings.BACKUP_OFFSITE_STORAGES = ["offsite"]
    make_item(make_shop(), stock=5)
    # when: Beat's message is delivered twice to a worker
    with worker(), finished_tasks() as finished:
        daily_backup.delay()
        wait_for(
            lambda: ScheduledRun.objects.filter(task="backups.daily", outcome="succeeded").exists(),
            "the daily backup to finish",
        )
        second = daily_backup.delay().id
        # the second delivery has been handled (not merely sent) before anything is counted
        wait_for(lambda: second in finished, "the second delivery to be handled")
    # then: one verified daily backup, copied offsite, recorded once
    backup = BackupLog.objects.get()
    assert (backup.kind, backup.status) == ("daily", "succeeded") and backup.verified_at
    assert SyncStatus.objects.get(backup=backup).status == "synced"
    run = ScheduledRun.objects.get(task="backups.daily")
    assert run.counts["backup"] == str(backup.pk) and run.counts["offsite"] == {"offsite": "synced"}


@pytest.mark.django_db(transaction=True)
def test_staff_post_queues_a_manual_backup_that_a_worker_runs(backup_root, broker, drop_other_connections):
    staff = UserFactory(is_staff=True)
    response = client_for(staff).post("/api/admin/backups", {}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "running" and response.json()["kind"] == "manual"
    with worker():
        wait_for(lambda: BackupLog.objects.get().status != "running", "the manual backup")
    backup = BackupLog.objects.get()
    assert backup.status == "succeeded" and backup.verified_at and backup.created_by == staff


@pytest.mark.django_db(transaction=True)
def test_weekly_backup_task_restore_tests(backup_root):
    from backups.tasks import weekly_backup

    counts = weekly_backup.apply().get()
    assert counts["restore_tested"] is True
    assert BackupLog.objects.get(kind="weekly").restore_tested_at is not None


# --- staff API ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_list_newest_first_and_detail(staff, backup_root):
    from django.utils import timezone

    old = BackupLog.objects.create(
        kind="daily", status="failed", started_at=timezone.now().replace(year=2025), error="boom"
    )
    new = BackupLog.objects.create(kind="manual", status="running", started_at=timezone.now())
    client = client_for(staff)
    body = client.get("/api/admin/backups/").json()
    assert [r["id"] for r in body["results"]] == [str(new.pk), str(old.pk)]
    detail = client.get(f"/api/admin/backups/{old.pk}")
    assert detail.status_code == 200 and detail.json()["error"] == "boom"


@pytest.mark.django_db
def test_non_staff_are_refused_and_anonymous_gets_401(auth_client, api_client):
    backup = BackupLog.objects.create(kind="daily", status="running", started_at="2026-11-01T03:00Z")
    assert_error(auth_client.get("/api/admin/backups"), 403)
    assert_error(auth_client.post("/api/admin/backups", {}, format="json"), 403)
    assert_error(auth_client.get(f"/api/admin/backups/{backup.pk}"), 403)
    assert_error(api_client.get("/api/admin/backups"), 401)
    assert_error(api_client.post("/api/admin/backups", {}, format="json"), 401)
    assert BackupLog.objects.count() == 1


@pytest.mark.django_db
def test_staff_bad_input_and_unknown_backup(staff):
    client = client_for(staff)
    assert_error(
        client.post("/api/admin/backups", {"kind": "hourly"}, format="json"), 400, "validation_error"
    )
    assert_error(client.post("/api/admin/backups", b"[", content_type="application/json"), 400)
    assert_error(client.get("/api/admin/backups/00000000-0000-0000-0000-000000000000"), 404)
    assert BackupLog.objects.count() == 0


@pytest.mark.django_db
def test_staff_list_query_count_is_constant(staff):
    from django.utils import timezone

    client = client_for(staff)
    BackupLog.objects.create(kind="daily", status="running", started_at=timezone.now())
    client.get("/api/admin/backups")  # warm: a token's first request also reads its user row
    with CaptureQueriesContext(connection) as one:
        client.get("/api/admin/backups")
    for n in range(5):
        b = BackupLog.objects.create(kind="daily", status="running", started_at=timezone.now())
        SyncStatus.objects.create(backup=b, target=f"t{n}")
    with CaptureQueriesContext(connection) as six:
        assert client.get("/api/admin/backups").json()["count"] == 6
    assert len(six) == len(one)


@pytest.mark.django_db
def test_admin_pages_and_manual_backup_button(admin_client, django_capture_on_commit_callbacks, monkeypatch):
    from backups import tasks

    queued = []
    monkeypatch.setattr(tasks.run_backup, "delay", lambda backup_id: queued.append(backup_id))
    for page in ("backuplog", "syncstatus", "recoverysnapshot"):
        assert admin_client.get(f"/admin/backups/{page}/").status_code == 200
    assert b"Start a manual backup" in admin_client.get("/admin/backups/backuplog/").content
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/backups/backuplog/start/")
    assert response.status_code == 302
    backup = BackupLog.objects.get()
    assert backup.kind == "manual" and queued == [str(backup.pk)]


# --- commands ----------------------------------------------------------------------------------


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_backup_commands_create_list_verify_restore(backup_root):
    out = run("backup_create", "--kind", "manual")
    backup = BackupLog.objects.get()
    assert "verified" in out and str(backup.pk) in out
    assert str(backup.pk) in run("backup_list")
    assert "restore test" in run("backup_verify", str(backup.pk), "--restore-test")
    target = pg.scratch_name()
    # without --yes nothing happens
    assert "would restore" in run("backup_restore", str(backup.pk), "--database", target)
    assert not pg.database_exists(target)
    try:
        run("backup_restore", str(backup.pk), "--database", target, "--yes")
        assert pg.database_exists(target)
        with pytest.raises(CommandError, match="already exists"):
            run("backup_restore", str(backup.pk), "--database", target, "--yes")
    finally:
        pg.drop_database(target)
    with pytest.raises(CommandError, match="live"):
        run("backup_restore", str(backup.pk), "--database", pg.live_database(), "--yes")
    with pytest.raises(CommandError):
        run("backup_verify", "not-a-uuid")


@pytest.mark.django_db
def test_prune_and_snapshot_commands_only_report_without_yes(backup_root):
    from datetime import timedelta

    from django.utils import timezone

    BackupLog.objects.create(kind="daily", status="failed", started_at=timezone.now() - timedelta(days=30))
    assert "would delete 1" in run("backup_prune")
    assert BackupLog.objects.count() == 1
    assert "deleted 1" in run("backup_prune", "--yes")
    assert BackupLog.objects.count() == 0

    shop = make_shop()
    item = make_item(shop, stock=4)
    assert "snapshot" in run("snapshot_create", "--shop", str(shop.pk))
    snapshot = RecoverySnapshot.objects.get()
    services.snapshot_create(shop=shop)  # a second one, expired below
    RecoverySnapshot.objects.exclude(pk=snapshot.pk).update(expires_at=timezone.now() - timedelta(days=1))
    from shops.services.stock import stock_update

    stock_update(item=item, change=-4)
    assert "would restore" in run("snapshot_restore", str(snapshot.pk))
    item.refresh_from_db()
    assert item.stock_quantity == 0
    assert "restored" in run("snapshot_restore", str(snapshot.pk), "--yes")
    item.refresh_from_db()
    assert item.stock_quantity == 4
    assert "would delete 1" in run("snapshot_cleanup")
    assert "deleted 1" in run("snapshot_cleanup", "--yes")
    assert RecoverySnapshot.objects.filter(pk=snapshot.pk).exists()
