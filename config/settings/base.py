"""Settings shared by every environment; values come from the environment (django-environ)."""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="dev-insecure-secret-key-change-me-0123456789abcdef")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_CREDENTIALS = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "pgtrigger",
    "config.apps.PlatformConfig",
    "accounts",
    "credits",
    "jobs",
    "shops",
    "analytics",
    "backups",
]

MIDDLEWARE = [
    "config.middleware.StripTrailingSlashMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/saas"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="saas"),
    }
}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.EmailBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = env("MEDIA_ROOT", default=str(BASE_DIR / "media"))
# Backups (SPEC §8): dumps go to the storage alias "backups" (a local folder by default; any
# Django storage, e.g. django-storages' S3 backend, by BACKUP_STORAGE_BACKEND/OPTIONS). Offsite
# copies go to every alias in BACKUP_OFFSITE_STORAGES, each declared in BACKUP_OFFSITE_STORAGE_CONFIG
# ({"alias": {"BACKEND": ..., "OPTIONS": {...}}}). See docs/OPERATIONS.md.
BACKUP_ROOT = env("BACKUP_ROOT", default=str(BASE_DIR / ".var" / "backups"))
BACKUP_STORAGE_BACKEND = env("BACKUP_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage")
BACKUP_STORAGE_OPTIONS = env.json("BACKUP_STORAGE_OPTIONS", default={"location": BACKUP_ROOT})
BACKUP_OFFSITE_STORAGES = env.list("BACKUP_OFFSITE_STORAGES", default=[])
BACKUP_OFFSITE_STORAGE_CONFIG = env.json("BACKUP_OFFSITE_STORAGE_CONFIG", default={})
BACKUP_KEEP_DAILY = env.int("BACKUP_KEEP_DAILY", default=7)  # days
BACKUP_KEEP_WEEKLY = env.int("BACKUP_KEEP_WEEKLY", default=8)  # weeks
SNAPSHOT_KEEP_DAYS = env.int("SNAPSHOT_KEEP_DAYS", default=90)
# Folder of pg_dump/pg_restore; empty: /usr/lib/postgresql/<server major>/bin when present, else PATH.
PG_BIN_DIR = env("PG_BIN_DIR", default="")

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    "backups": {"BACKEND": BACKUP_STORAGE_BACKEND, "OPTIONS": BACKUP_STORAGE_OPTIONS},
    **BACKUP_OFFSITE_STORAGE_CONFIG,
}

# Request size limits: anything larger is refused with a 400 envelope.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# Fernet keys for secrets at rest, newest first (MultiFernet rotation).
FERNET_KEYS = env.list("FERNET_KEYS", default=["Zm9yLWRldmVsb3BtZW50LW9ubHktMzItYnl0ZXMtITE="])

# Per-provider webhook secrets are read as PAYMENT_WEBHOOK_SECRET_<P> / JOB_WEBHOOK_SECRET_<P>.
WEBHOOK_TOLERANCE_SECONDS = 300

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.JWTCookieOrHeaderAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.LimitedJSONParser",
        "config.parsers.LimitedFormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.StandardPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("THROTTLE_ANON", default="120/min"),
        "user": env("THROTTLE_USER", default="1200/min"),
        "login": env("THROTTLE_LOGIN", default="10/min"),
        "register": env("THROTTLE_REGISTER", default="20/hour"),
        "public_form": env("THROTTLE_PUBLIC_FORM", default="30/min"),
        "webhook": env("THROTTLE_WEBHOOK", default="600/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Trust X-Forwarded-For only behind this many proxies. With DRF's default (None) a client
    # picks its own throttle identity by sending the header, so login throttling is void.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=14)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "USER_ID_FIELD": "id",
    "SIGNING_KEY": SECRET_KEY,
}
JWT_COOKIE_SECURE = env.bool("JWT_COOKIE_SECURE", default=False)
JWT_COOKIE_SAMESITE = "Lax"

SPECTACULAR_SETTINGS = {
    "TITLE": "Credit-metered SaaS API",
    "DESCRIPTION": "Accounts, credits, jobs, shops, analytics and backups.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models name a field status/kind/role/provider; give each choice set its own name.
    "ENUM_NAME_OVERRIDES": {
        "LicenseStatusEnum": "accounts.models.License.Status",
        "SubscriptionStatusEnum": "accounts.models.Subscription.Status",
        "PaymentStatusEnum": "credits.models.Payment.Status",
        "PaymentProviderEnum": "credits.models.Provider",
        "JobStatusEnum": "jobs.states.JobStatus",
        "JobFileRoleEnum": "jobs.models.JobFile.Role",
        "ShopRoleEnum": "shops.models.Role",
        "ItemKindEnum": "shops.models.Item.Kind",
        "PaymentMethodKindEnum": "shops.models.PaymentMethod.Kind",
        "ConversationStatusEnum": "shops.models.Conversation.Status",
        "OrderStatusEnum": "shops.models.OrderStatus",
        "IntegrationProviderEnum": "shops.models.SocialIntegration.Provider",
        "BackupKindEnum": "backups.models.BackupLog.Kind",
    },
}

# Celery (SPEC §5): late acks, requeue on worker loss, one message at a time per process.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_TIME_LIMIT = 60 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 55 * 60
# Longer than the longest job (time limit above), so Redis never redelivers a running task.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}

CSRF_FAILURE_VIEW = "config.exceptions.csrf_failure"
