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


def test_a_plain_worker_consumes_every_queue_a_task_is_routed_to():
    app.loader.import_default_modules()
    declared = {queue.name for queue in app.conf.task_queues}
    routed = {
        task.queue or app.conf.task_default_queue
        for name, task in app.tasks.items()
        if not name.startswith("celery.")
    }

    assert routed <= declared, f"tasks routed to queues no plain worker consumes: {routed - declared}"
    assert {"default", "jobs"} <= declared


def test_every_task_can_be_dispatched_with_its_time_limits():
    """apply_async refuses a task whose soft limit exceeds its hard limit (the global soft limit
    applies when a task sets only a hard one): every project task states both, soft < hard."""
    app.loader.import_default_modules()
    for name, task in app.tasks.items():
        if name.startswith("celery."):
            continue
        hard = task.time_limit or app.conf.task_time_limit
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        assert task.time_limit and task.soft_time_limit, f"{name} must state both limits"
        assert soft < hard, f"{name}: soft {soft} s must be below hard {hard} s"


def test_workers_are_replaced_past_the_memory_ceiling():
    assert app.conf.worker_max_memory_per_child == settings.CELERY_WORKER_MAX_MEMORY_PER_CHILD > 0
    assert app.conf.worker_max_tasks_per_child == settings.CELERY_WORKER_MAX_TASKS_PER_CHILD > 0


def test_queues_and_transport_options_follow_the_broker():
    from config.settings.base import broker_transport_options, celery_queues

    rabbit = celery_queues("amqp://guest:guest@127.0.0.1:5672/saas")
    plain = celery_queues("redis://127.0.0.1:6379/0")

    assert [q.name for q in rabbit] == [q.name for q in plain] == ["default", "jobs"]
    assert all(q.queue_arguments == {"x-queue-type": "quorum"} and q.durable for q in rabbit)
    assert all(q.exchange.type == "topic" for q in rabbit)  # native delayed delivery needs it
    assert all(not q.queue_arguments and q.exchange.type == "direct" for q in plain)
    assert broker_transport_options("amqps://h/v") == {"confirm_publish": True}
    assert broker_transport_options("redis://h/0")["visibility_timeout"] > settings.CELERY_TASK_TIME_LIMIT
