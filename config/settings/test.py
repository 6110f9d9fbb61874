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


def _free_port() -> int:
    """A free loopback port below the ephemeral range (outgoing connections never take it)."""
    import random
    import socket

    rng = random.Random()
    for _ in range(100):
        port = rng.randrange(20000, 32000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for the social login stand-in")


# Social login: every provider endpoint points at the stand-in the tests start on this address
# (tests/accounts/social/providers.py). allauth reads some of them when its modules are imported,
# so the address is fixed here, once per test process.
SOCIAL_STANDIN_URL = f"http://127.0.0.1:{_free_port()}"
SOCIAL_GOOGLE_CLIENT_ID = "google-client-1.apps.googleusercontent.com"
SOCIAL_FACEBOOK_APP_ID = "1234567890"
SOCIAL_FACEBOOK_APP_SECRET = "facebook-app-secret"
SOCIAL_LINE_CHANNEL_ID = "1650000000"
SOCIAL_LINE_CHANNEL_SECRET = "line-channel-secret"
SOCIALACCOUNT_PROVIDERS = {
    "google": {
        **SOCIALACCOUNT_PROVIDERS["google"],  # noqa: F405
        "APPS": [{"client_id": SOCIAL_GOOGLE_CLIENT_ID, "secret": "", "key": ""}],
        "CERTS_URL": f"{SOCIAL_STANDIN_URL}/google/oauth2/v1/certs",
        "IDENTITY_URL": f"{SOCIAL_STANDIN_URL}/google/oauth2/v2/userinfo",
        "ACCESS_TOKEN_URL": f"{SOCIAL_STANDIN_URL}/google/token",
    },
    "facebook": {
        **SOCIALACCOUNT_PROVIDERS["facebook"],  # noqa: F405
        "APPS": [{"client_id": SOCIAL_FACEBOOK_APP_ID, "secret": SOCIAL_FACEBOOK_APP_SECRET, "key": ""}],
        "GRAPH_API_URL": f"{SOCIAL_STANDIN_URL}/facebook/v19.0",
    },
    "openid_connect": {
        "APPS": [
            {
                "provider_id": "line",
                "name": "LINE",
                "client_id": SOCIAL_LINE_CHANNEL_ID,
                "secret": SOCIAL_LINE_CHANNEL_SECRET,
                "settings": {"server_url": f"{SOCIAL_STANDIN_URL}/line"},
            }
        ]
    },
}
