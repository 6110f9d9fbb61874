import logging.config
import os

from celery import Celery
from celery.signals import setup_logging, worker_process_shutdown
from django_structlog.celery.steps import DjangoStructLogInitStep

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Workers log the request id of the request that enqueued a task (django-structlog).
app.steps["worker"].add(DjangoStructLogInitStep)


@setup_logging.connect
def _use_django_logging(**kwargs):
    """Workers and beat log exactly like the web process (settings.LOGGING: JSON lines)."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@worker_process_shutdown.connect
def _metrics_process_dead(pid=None, **kwargs):
    """A pool process leaving: its counts stay in the multiprocess totals (config/metrics.py),
    its gauges of live processes go."""
    from django.conf import settings
    from prometheus_client import multiprocess

    if settings.PROMETHEUS_MULTIPROC_DIR:
        multiprocess.mark_process_dead(pid or os.getpid(), settings.PROMETHEUS_MULTIPROC_DIR)
