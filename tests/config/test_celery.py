from django.conf import settings

from config.celery import app
from config.schedules import SCHEDULES


def test_celery_engine_settings_match_the_spec():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] > settings.CELERY_TASK_TIME_LIMIT
    assert conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    assert conf.timezone == "UTC"
    assert not conf.task_always_eager


def test_every_declared_schedule_names_a_registered_task():
    app.loader.import_default_modules()

    missing = sorted({s.task for s in SCHEDULES} - set(app.tasks))

    assert not missing, f"schedules name tasks that do not exist: {missing}"


def test_schedule_names_are_unique():
    names = [s.name for s in SCHEDULES]
    assert len(names) == len(set(names))


def test_every_schedule_has_exactly_one_timing():
    for s in SCHEDULES:
        assert bool(s.crontab) != bool(s.interval_seconds), s.name
