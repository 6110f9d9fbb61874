"""Engine tunables: Django settings first, then the environment, then defaults.

The environment fallback lets a worker started as a subprocess (tests, benchmarks) be tuned
without a settings file of its own.
"""

import os

from django.conf import settings

DEFAULTS = {
    "JOBS_QUEUE": "jobs",
    "JOBS_CLAIM_BATCH": 4,
    "JOBS_DRAIN_SECONDS": 30.0,
    "JOBS_HEARTBEAT_SECONDS": 10.0,
    "JOBS_STALE_AFTER_SECONDS": 90.0,
    "JOBS_RETRY_BASE_SECONDS": 10.0,
    "JOBS_RETRY_MAX_SECONDS": 15 * 60.0,
    "JOBS_MAX_MODEL_BYTES": 50 * 1024 * 1024,
    "JOBS_MAX_VIDEO_BYTES": 500 * 1024 * 1024,
    "JOBS_MAX_IMAGE_BYTES": 10 * 1024 * 1024,
    "JOBS_EXTRA_PROCESSOR_MODULES": "",
}


def get(name: str):
    default = DEFAULTS[name]
    if hasattr(settings, name):
        return getattr(settings, name)
    raw = os.environ.get(name)
    if raw is None:
        return default
    return type(default)(raw)
