import io

import pytest
from django.core.management import call_command
from django.http import HttpRequest
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from accounts.management.commands import seed_demo
from accounts.models import License, User, UserPreferences
from config.schedules import SCHEDULES, Schedule
from tests.accounts.conftest import login

pytestmark = pytest.mark.django_db


def _sync():
    call_command("sync_schedules", stdout=io.StringIO())


def _rows():
    return (
        sorted(PeriodicTask.objects.values_list("name", "task", "crontab_id", "interval_id", "enabled")),
        CrontabSchedule.objects.count(),
        IntervalSchedule.objects.count(),
    )


def test_sync_schedules_writes_every_declared_schedule():
    _sync()

    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert {s.name for s in SCHEDULES} <= names
    expiry = PeriodicTask.objects.get(task="accounts.expire_licenses")
    assert expiry.enabled and str(expiry.crontab.timezone) == "UTC"
    assert PeriodicTask.objects.filter(task="accounts.flush_expired_tokens").exists()


def test_sync_schedules_twice_gives_the_same_rows():
    _sync()
    first = _rows()

    _sync()

    assert _rows() == first


def test_sync_schedules_keeps_a_schedule_disabled_in_admin_disabled():
    _sync()
    PeriodicTask.objects.filter(task="accounts.expire_licenses").update(enabled=False)

    _sync()

    assert PeriodicTask.objects.get(task="accounts.expire_licenses").enabled is False


def test_seed_demo_is_idempotent_and_its_logins_work(api_client):
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    first = (User.objects.count(), License.objects.count(), UserPreferences.objects.count())

    call_command("seed_demo", stdout=io.StringIO())

    assert (User.objects.count(), License.objects.count(), UserPreferences.objects.count()) == first
    assert seed_demo.ADMIN_EMAIL in out.getvalue() and seed_demo.ADMIN_PASSWORD in out.getvalue()
    admin = User.objects.get(email=seed_demo.ADMIN_EMAIL)
    assert admin.is_staff and admin.is_superuser
    assert login(api_client, seed_demo.DEMO_EMAIL, seed_demo.DEMO_PASSWORD).status_code == 200
    # django-axes needs the request to know who is trying (AxesStandaloneBackend)
    assert api_client.login(
        request=HttpRequest(), username=seed_demo.ADMIN_EMAIL, password=seed_demo.ADMIN_PASSWORD
    )


def test_accounts_models_and_migrations_agree():
    # exits non-zero (SystemExit) when a model change has no migration
    call_command("makemigrations", "accounts", "--check", "--dry-run", stdout=io.StringIO())


def test_sync_schedules_applies_a_changed_timing_and_keeps_the_admin_pause(monkeypatch):
    from accounts.management.commands import sync_schedules

    _sync()
    PeriodicTask.objects.filter(task="accounts.expire_licenses").update(enabled=False)
    changed = [
        Schedule(s.name, s.task, crontab={"minute": "45", "hour": "2"})
        if s.task == "accounts.expire_licenses"
        else s
        for s in SCHEDULES
    ]
    monkeypatch.setattr(sync_schedules, "SCHEDULES", changed)

    _sync()

    task = PeriodicTask.objects.get(task="accounts.expire_licenses")
    assert (task.crontab.minute, task.crontab.hour) == ("45", "2")
    assert task.enabled is False


def test_sync_schedules_handles_interval_schedules_idempotently(monkeypatch):
    from accounts.management.commands import sync_schedules

    every_minute = Schedule("test: every minute", "accounts.expire_licenses", interval_seconds=60)
    monkeypatch.setattr(sync_schedules, "SCHEDULES", [every_minute])

    _sync()
    _sync()

    task = PeriodicTask.objects.get(name="test: every minute")
    assert (task.interval.every, task.interval.period, task.crontab) == (60, "seconds", None)
    assert IntervalSchedule.objects.filter(every=60, period="seconds").count() == 1
