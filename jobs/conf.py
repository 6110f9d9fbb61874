"""Kept only for modules that still call `conf.get(name)` (jobs/files.py, jobs/processors, owned
by another branch): every JOBS_* tunable is declared in config/settings/base.py and read from
django.conf.settings. New code reads `settings.JOBS_*` directly; delete this once nothing calls it.
"""

from django.conf import settings


def get(name: str):
    return getattr(settings, name)
