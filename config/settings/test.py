"""Test settings: the same real PostgreSQL and Redis as production, on a separate Redis database."""

from .base import *  # noqa: F403
from .base import REST_FRAMEWORK, broker_transport_options, celery_queues, env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": env("TEST_REDIS_URL", default="redis://127.0.0.1:6379/15"),
        "KEY_PREFIX": "test",
        "OPTIONS": CACHE_OPTIONS,  # noqa: F405
    }
}
# TEST_BROKER_URL: what a worker subprocess started by a test uses (the broker that test runs on).
CELERY_BROKER_URL = env("TEST_BROKER_URL", default=env("TEST_REDIS_URL", default="redis://127.0.0.1:6379/15"))
CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(CELERY_BROKER_URL)
CELERY_TASK_QUEUES = celery_queues(CELERY_BROKER_URL)
MEDIA_ROOT = env("TEST_MEDIA_ROOT", default="/tmp/saas-test-media")
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
        "anon": "100000/min",
        "user": "100000/min",
        "public_form": "100000/min",
    },
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "backups": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": f"{MEDIA_ROOT}/backups"},
    },
}
BACKUP_OFFSITE_STORAGES: list = []
# Static files are not served in tests; WhiteNoise would only warn about the missing folder.
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("whitenoise")]  # noqa: F405
