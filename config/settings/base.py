"""Settings shared by every environment; values come from the environment (django-environ)."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
import structlog
from corsheaders.defaults import default_headers as default_cors_headers
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="dev-insecure-secret-key-change-me-0123456789abcdef")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_CREDENTIALS = True
# A browser frontend sends Idempotency-Key on creates and reads the replay and capped-count flags;
# X-Session-Token: allauth's headless app client carries its pending sign-in flows in it.
CORS_ALLOW_HEADERS = (*default_cors_headers, "idempotency-key", "x-session-token")
CORS_EXPOSE_HEADERS = ["Idempotent-Replayed", "X-Count-Capped"]

INSTALLED_APPS = [
    "console.apps.AdminConfig",  # django.contrib.admin with the dashboard on its index
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
    "django_structlog",
    "pgtrigger",
    "axes",
    "import_export",
    "django_otp",  # staff pass a TOTP second factor before any admin page (console.admin_site)
    "django_otp.plugins.otp_totp",
    # Social login through allauth's headless API (accounts/social.py); no allauth page is served.
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.facebook",
    "allauth.socialaccount.providers.openid_connect",  # LINE Login (OpenID Connect)
    "allauth.headless",
    "config.apps.PlatformConfig",
    "accounts",
    "credits",
    "jobs",
    "shops",
    "analytics",
    "backups",
    "console.apps.ConsoleConfig",  # the admin dashboard: reads every app above, so it comes last (the layers)
]

MIDDLEWARE = [
    "config.middleware.MetricsMiddleware",  # first: its time covers every other middleware
    "config.middleware.StripTrailingSlashMiddleware",
    "config.replicas.ReplicaPinMiddleware",  # a request that writes reads its writes (replicas)
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): the admin's second factor
    "allauth.account.middleware.AccountMiddleware",  # required by allauth (social login)
    "config.middleware.RequestIdMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns an admin lockout into a 429 page
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
APPEND_SLASH = False

# The admin shows times with seconds (ledger, payments, jobs are read to the second): our own
# format module comes before Django's locale formats.
FORMAT_MODULE_PATH = ["config.formats"]

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
# Server-side cursors (QuerySet.iterator(), which django-import-export's exports use) stay open
# across transactions in autocommit, which a transaction-mode pooler (PgBouncer) breaks: the
# next fetch may reach another server connection. Off unless DATABASE_SERVER_SIDE_CURSORS=true
# (a direct connection, or a session-mode pooler); off, iterator() fetches its rows client-side.
DATABASE_SERVER_SIDE_CURSORS = env.bool("DATABASE_SERVER_SIDE_CURSORS", default=False)
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = not DATABASE_SERVER_SIDE_CURSORS
# Prepared statements are off by default (Django's own default, prepare_threshold None), so every
# connection is safe behind a pooler that cannot keep them (PgBouncer in transaction mode without
# max_prepared_statements). DATABASE_PREPARED_STATEMENTS=true (a direct connection, or a pooler
# that keeps them per session) turns them on for the job engine alone: its statements then run
# on the `engine` alias, the same database through Django's documented options (server-side
# binding, psycopg's prepare_threshold), so PostgreSQL stops parsing and planning them per job.
# The rest of the app keeps the `default` alias unchanged. The alias is always declared (a
# connection opens only when used) so tests can exercise both settings.
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=False)
DATABASES["engine"] = {
    **DATABASES["default"],
    "OPTIONS": {
        **DATABASES["default"].get("OPTIONS", {}),
        "server_side_binding": True,
        "prepare_threshold": 0,  # prepared on first use: the engine runs a handful of statements
    },
    "TEST": {"MIRROR": "default"},
}
JOBS_DATABASE = "engine" if DATABASE_PREPARED_STATEMENTS else "default"
# Read replicas (config/replicas.py): streaming replicas of `default`, comma-separated URLs, as
# aliases `replica`, `replica_2`, … Heavy reads (analytics, the admin dashboard, stats) go to the
# first one that answers and lags at most REPLICA_MAX_LAG_SECONDS; a request that wrote, and its
# client for REPLICA_PIN_SECONDS after, read from the primary. The replica is checked at most
# every REPLICA_CHECK_SECONDS per process, with a connect timeout of REPLICA_CONNECT_TIMEOUT.
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=10.0)
REPLICA_PIN_SECONDS = env.int("REPLICA_PIN_SECONDS", default=10)
REPLICA_CHECK_SECONDS = env.float("REPLICA_CHECK_SECONDS", default=1.0)
REPLICA_CONNECT_TIMEOUT = env.int("REPLICA_CONNECT_TIMEOUT", default=2)
DATABASE_REPLICAS = []
for _number, _url in enumerate(env.list("DATABASE_REPLICA_URLS", default=[]), start=1):
    _alias = "replica" if _number == 1 else f"replica_{_number}"
    _replica = env.db_url_config(_url)
    DATABASES[_alias] = {
        **DATABASES["default"],
        **_replica,
        "OPTIONS": {**_replica.get("OPTIONS", {}), "connect_timeout": REPLICA_CONNECT_TIMEOUT},
        "TEST": {"MIRROR": "default"},
    }
    DATABASE_REPLICAS.append(_alias)
DATABASE_ROUTERS = ["config.replicas.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# django-redis, failing open (config/cache.py): with Redis down a cache call is a miss, throttles
# let requests through, and the outage is logged (to `config.cache`, once per 10 s per process).
CACHE_OPTIONS = {
    "SOCKET_CONNECT_TIMEOUT": env.float("CACHE_CONNECT_TIMEOUT", default=0.5),
    "SOCKET_TIMEOUT": env.float("CACHE_TIMEOUT", default=1.0),
    "IGNORE_EXCEPTIONS": True,
}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="saas"),
        "OPTIONS": CACHE_OPTIONS,
    }
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
DJANGO_REDIS_LOGGER = "config.cache"

AUTH_USER_MODEL = "accounts.User"
# django-axes first: it refuses a locked-out (email, IP) before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "accounts.backends.EmailBackend"]
# Login lockout (admin and API alike): after AXES_FAILURE_LIMIT wrong passwords for
# one email from one address, that pair is refused — right password included — for the
# cool-off. The address is DRF's throttle identity (NUM_PROXIES), the email is read from the
# admin form's `username` or the API's `email` (accounts.backends.axes_username).
AXES_ENABLED = True
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "accounts.backends.axes_username"
AXES_CLIENT_IP_CALLABLE = "accounts.backends.axes_client_ip"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False
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
# Backups: dumps go to the storage alias "backups" (a local folder by default; any
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

# Job files: downloads and quotas.
# When set (e.g. "/protected-media/"), downloads answer an empty 200 with X-Accel-Redirect to
# this prefix + the stored name, and the front proxy (nginx `internal` location) sends the bytes.
JOBS_FILES_ACCEL_REDIRECT_PREFIX = env("JOBS_FILES_ACCEL_REDIRECT_PREFIX", default="")
# Lifetime of the signed URL a download redirects to when the storage is remote (S3-compatible).
JOBS_FILES_SIGNED_URL_SECONDS = env.int("JOBS_FILES_SIGNED_URL_SECONDS", default=300)
# A model export's download link works this long after the export completed (then 410 `expired`).
JOBS_EXPORT_LINK_SECONDS = env.int("JOBS_EXPORT_LINK_SECONDS", default=7 * 24 * 3600)
# Model files whose declared vertex or face count is above this are refused at upload (400
# `mesh_too_large`), read from the header / a streaming scan, before any full parse.
JOBS_MAX_MESH_FACES = env.int("JOBS_MAX_MESH_FACES", default=2_000_000)
# Stored bytes per user, over all their jobs' files (413 `storage_quota_exceeded`).
STORAGE_QUOTA_BYTES = env.int("STORAGE_QUOTA_BYTES", default=1024**3)
# Files one job may hold (400 `too_many_files`).
JOBS_MAX_FILES_PER_JOB = env.int("JOBS_MAX_FILES_PER_JOB", default=10)
# A failed model import gives its model slot back (a corrupt file must not cost a free user a
# model forever), so repetition is bounded instead: after this many failed imports in the last
# 24 hours, new imports are refused with 429 `too_many_failed_imports`.
JOBS_MAX_FAILED_MODEL_IMPORTS_PER_DAY = env.int("JOBS_MAX_FAILED_MODEL_IMPORTS_PER_DAY", default=10)
# Files of jobs failed or cancelled longer ago than this are deleted by `jobs.cleanup_dead_files`.
JOBS_DEAD_FILES_DAYS = env.int("JOBS_DEAD_FILES_DAYS", default=30)

# Request size limits: anything larger is refused with a 400 envelope.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Larger uploads are spooled here, each file locked by its request, so the files of a killed
# worker are found and deleted by the gunicorn master (config/uploads.py, config/gunicorn.py).
# A folder of its own: nothing else may be written there.
FILE_UPLOAD_TEMP_DIR = env("FILE_UPLOAD_TEMP_DIR", default=str(BASE_DIR / ".var" / "uploads"))
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "config.uploads.LockedTemporaryFileUploadHandler",
]
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# Fernet keys for secrets at rest, newest first (MultiFernet rotation).
FERNET_KEYS = env.list("FERNET_KEYS", default=["Zm9yLWRldmVsb3BtZW50LW9ubHktMzItYnl0ZXMtITE="])

# Signed webhooks (credits.webhook_receiver). Payment providers are the fixed set credits supports; each
# secret is PAYMENT_WEBHOOK_SECRET_<P> ("" = not configured: every delivery refused).
WEBHOOK_TOLERANCE_SECONDS = 300
PAYMENT_WEBHOOK_SECRETS = {
    p: env.str(f"PAYMENT_WEBHOOK_SECRET_{p.upper()}", default="")
    for p in ("stripe", "promptpay", "truemoney", "razorpay", "free")
}
# Job-webhook providers are named in JOB_WEBHOOK_PROVIDERS (comma-separated); provider P signs with
# JOB_WEBHOOK_SECRET_<P> and may drive only the job kinds in JOB_WEBHOOK_KINDS_<P> (comma-separated
# codes; unset or empty = every kind an external worker reports).
JOB_WEBHOOK_PROVIDERS = {
    p.lower(): {
        "secret": env.str(f"JOB_WEBHOOK_SECRET_{p.upper()}", default=""),
        "kinds": env.list(f"JOB_WEBHOOK_KINDS_{p.upper()}", default=[]),
    }
    for p in env.list("JOB_WEBHOOK_PROVIDERS", default=[])
}
# Replicate (jobs.replicate): job kinds mapped to a model version run there. REPLICATE_KIND_VERSIONS
# is "kind=version,kind2=version2"; a job of such a kind starts a prediction (the official SDK) with
# the webhook <PUBLIC_BASE_URL>/api/webhooks/jobs/replicate, verified with REPLICATE_WEBHOOK_SECRET
# (the "whsec_..." signing secret Replicate's dashboard or GET /v1/webhooks/default/secret gives).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://localhost:8000").rstrip("/")
REPLICATE_API_TOKEN = env.str("REPLICATE_API_TOKEN", default="")
REPLICATE_API_BASE = env.str("REPLICATE_API_BASE", default="https://api.replicate.com").rstrip("/")
REPLICATE_WEBHOOK_SECRET = env.str("REPLICATE_WEBHOOK_SECRET", default="")
REPLICATE_KIND_VERSIONS = env.dict("REPLICATE_KIND_VERSIONS", default={})
# Seconds one call to Replicate (or one output download) may take; the largest output copied.
REPLICATE_TIMEOUT_SECONDS = env.float("REPLICATE_TIMEOUT_SECONDS", default=30.0)
REPLICATE_OUTPUT_MAX_BYTES = env.int("REPLICATE_OUTPUT_MAX_BYTES", default=500 * 1024 * 1024)
# Retries of an output download that failed transiently (network, 429, 5xx), with backoff from
# REPLICATE_DOWNLOAD_BACKOFF_SECONDS (doubling); then the job fails and is refunded.
REPLICATE_DOWNLOAD_RETRIES = env.int("REPLICATE_DOWNLOAD_RETRIES", default=4)
REPLICATE_DOWNLOAD_BACKOFF_SECONDS = env.float("REPLICATE_DOWNLOAD_BACKOFF_SECONDS", default=10.0)
# Provider API keys. Empty = the provider is not offered (400 provider_unavailable).
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
RAZORPAY_KEY_ID = env.str("RAZORPAY_KEY_ID", default="")
RAZORPAY_KEY_SECRET = env.str("RAZORPAY_KEY_SECRET", default="")
# Where the SDKs send their API calls: the providers' own hosts; another value points them at a
# stand-in speaking the same protocol (stripe-mock, a sandbox proxy).
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com").rstrip("/")
RAZORPAY_API_BASE = env.str("RAZORPAY_API_BASE", default="https://api.razorpay.com").rstrip("/")
# How long a checkout/order creation may wait for the provider's API.
PAYMENT_PROVIDER_TIMEOUT_SECONDS = env.int("PAYMENT_PROVIDER_TIMEOUT_SECONDS", default=10)

# Social login: Google, Facebook and LINE Login through django-allauth's headless API, app client
# (POST /_allauth/app/v1/auth/provider/token; README "Social login"). It answers with the same
# simplejwt pair as POST /api/auth/token (accounts.social.SimpleJWTTokenStrategy). An empty
# client id = that provider is not offered. The *_URL settings are where each provider's
# endpoints are; the defaults are the real hosts, another value points at a stand-in.
SOCIAL_GOOGLE_CLIENT_ID = env.str("SOCIAL_GOOGLE_CLIENT_ID", default="")
SOCIAL_GOOGLE_CERTS_URL = env.str(
    "SOCIAL_GOOGLE_CERTS_URL", default="https://www.googleapis.com/oauth2/v1/certs"
)
SOCIAL_GOOGLE_USERINFO_URL = env.str(
    "SOCIAL_GOOGLE_USERINFO_URL", default="https://www.googleapis.com/oauth2/v2/userinfo"
)
SOCIAL_GOOGLE_TOKEN_URL = env.str("SOCIAL_GOOGLE_TOKEN_URL", default="https://oauth2.googleapis.com/token")
SOCIAL_FACEBOOK_APP_ID = env.str("SOCIAL_FACEBOOK_APP_ID", default="")
SOCIAL_FACEBOOK_APP_SECRET = env.str("SOCIAL_FACEBOOK_APP_SECRET", default="")
SOCIAL_FACEBOOK_GRAPH_VERSION = env.str("SOCIAL_FACEBOOK_GRAPH_VERSION", default="v19.0")
SOCIAL_FACEBOOK_GRAPH_URL = env.str(
    "SOCIAL_FACEBOOK_GRAPH_URL", default=f"https://graph.facebook.com/{SOCIAL_FACEBOOK_GRAPH_VERSION}"
).rstrip("/")
SOCIAL_LINE_CHANNEL_ID = env.str("SOCIAL_LINE_CHANNEL_ID", default="")
SOCIAL_LINE_CHANNEL_SECRET = env.str("SOCIAL_LINE_CHANNEL_SECRET", default="")
# LINE Login is OpenID Connect: its discovery document (/.well-known/openid-configuration under
# this URL) names the JWKS the ID tokens are verified with.
SOCIAL_LINE_SERVER_URL = env.str("SOCIAL_LINE_SERVER_URL", default="https://access.line.me").rstrip("/")
# How long one call to a provider may take (seconds).
SOCIALACCOUNT_REQUESTS_TIMEOUT = env.int("SOCIAL_REQUESTS_TIMEOUT", default=5)
PROMPTPAY_MERCHANT_ID = env.str("PROMPTPAY_MERCHANT_ID", default="0000000000000")
# The seller on every receipt / tax invoice, and the VAT included in THB prices (percent).
RECEIPT_SELLER_NAME = env.str("RECEIPT_SELLER_NAME", default="Example Co., Ltd.")
RECEIPT_SELLER_ADDRESS = env.str("RECEIPT_SELLER_ADDRESS", default="")
RECEIPT_SELLER_TAX_ID = env.str("RECEIPT_SELLER_TAX_ID", default="")
VAT_RATE_THB = Decimal(env.str("VAT_RATE_THB", default="7"))
# The account a bank-transfer checkout shows ("Bank, account name, number"); empty = not offered.
BANK_TRANSFER_DETAILS = env.str("BANK_TRANSFER_DETAILS", default="")
# Days before a subscription's period ends that its renewal payment opens and the "renews in
# N days" email (with that payment's checkout link) is sent.
RENEWAL_REMINDER_DAYS = env.int("RENEWAL_REMINDER_DAYS", default=3)

# Chat channels (shops.channels): where outbound messages are sent and how failures are retried.
# The base URLs exist so a test (or a regional proxy) can stand in for the channel's API.
LINE_API_BASE_URL = env.str("LINE_API_BASE_URL", default="https://api.line.me").rstrip("/")
MESSENGER_GRAPH_API_BASE_URL = env.str(
    "MESSENGER_GRAPH_API_BASE_URL", default="https://graph.facebook.com"
).rstrip("/")
MESSENGER_GRAPH_API_VERSION = env.str("MESSENGER_GRAPH_API_VERSION", default="v21.0")
CHANNEL_HTTP_TIMEOUT_SECONDS = env.float("CHANNEL_HTTP_TIMEOUT_SECONDS", default=10.0)
# A message is tried at most this many times (429, 5xx, network errors are retried).
CHANNEL_DELIVERY_MAX_ATTEMPTS = env.int("CHANNEL_DELIVERY_MAX_ATTEMPTS", default=6)
# Exponential backoff with jitter between attempts, never sooner than the channel's Retry-After.
CHANNEL_DELIVERY_BACKOFF_SECONDS = env.float("CHANNEL_DELIVERY_BACKOFF_SECONDS", default=5.0)
CHANNEL_DELIVERY_BACKOFF_MAX_SECONDS = env.float("CHANNEL_DELIVERY_BACKOFF_MAX_SECONDS", default=900.0)

# How many reverse proxies in front of the app append to X-Forwarded-For. No default that is
# right everywhere: too many lets a client with no proxy in front rotate the header past the
# throttles and the login lockout, too few puts every client behind the proxy in one bucket. So
# `manage.py check --deploy` fails (platform.E001, config/checks.py) while it is not set.
NUM_PROXIES = env.int("NUM_PROXIES", default=None)

REST_FRAMEWORK = {
    # Api-Key is recognised everywhere so a key on a user endpoint gets 403 insufficient_scope
    # rather than 401; IsUserAccount (the default) refuses keys unless the view adds
    # IsServiceKeyWithScope for its `required_scope`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.JWTCookieOrHeaderAuthentication",
        "accounts.authentication.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsUserAccount"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only: a body has one media type, so the schema declares one and generated clients
    # work. Views that take a file add MultiPartParser themselves (jobs/apis.py).
    "DEFAULT_PARSER_CLASSES": ["config.parsers.LimitedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.StandardPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "config.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "config.throttling.AnonRateThrottle",
        "config.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("THROTTLE_ANON", default="120/min"),
        "user": env("THROTTLE_USER", default="1200/min"),
        "login": env("THROTTLE_LOGIN", default="10/min"),
        "register": env("THROTTLE_REGISTER", default="20/hour"),
        "public_form": env("THROTTLE_PUBLIC_FORM", default="30/min"),
        "webhook": env("THROTTLE_WEBHOOK", default="600/min"),
        "password_reset": env("THROTTLE_PASSWORD_RESET", default="5/hour"),
        "email_verify": env("THROTTLE_EMAIL_VERIFY", default="30/hour"),
        "client_errors": env("THROTTLE_CLIENT_ERRORS", default="60/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Trust X-Forwarded-For only behind this many proxies. With DRF's default (None) a client
    # picks its own throttle identity by sending the header, so login throttling is void.
    # Unset means 0 (the header is ignored); production must say (check --deploy, below).
    "NUM_PROXIES": NUM_PROXIES or 0,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# `?page=` lists count at most this many matches (config/pagination.py); `?cursor=` never counts.
# 1,000 matches = 50 pages of 20, exact; past that the count is capped. Counting 10,000 index
# entries cost 1.3 ms per page-1 request of a heavy account, 1,000 cost 0.3 ms (pgbench, 1M rows).
PAGINATION_COUNT_LIMIT = env.int("PAGINATION_COUNT_LIMIT", default=1_000)

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

# django-allauth: headless only (no allauth page), the app client only (tokens, no cookies), users
# log in by email (the User model has no username). Verification emails are ours
# (accounts.services), so allauth sends none. A social login whose provider vouches for the
# email logs into the account holding that email and links it (EMAIL_AUTHENTICATION*); an
# unverified one never does. accounts/social.py holds the adapters and the token strategy.
HEADLESS_ONLY = True
HEADLESS_CLIENTS = ("app",)
HEADLESS_TOKEN_STRATEGY = "accounts.social.SimpleJWTTokenStrategy"
SOCIALACCOUNT_ADAPTER = "accounts.social.SocialAccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_ONLY = True  # allauth's own email/password flows stay off: /api/auth/* are the ones
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_REQUIRED = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_PROVIDERS = {
    "google": {
        "APPS": [{"client_id": SOCIAL_GOOGLE_CLIENT_ID, "secret": "", "key": ""}]
        if SOCIAL_GOOGLE_CLIENT_ID
        else [],
        "SCOPE": ["profile", "email"],
        "CERTS_URL": SOCIAL_GOOGLE_CERTS_URL,
        "IDENTITY_URL": SOCIAL_GOOGLE_USERINFO_URL,
        "ACCESS_TOKEN_URL": SOCIAL_GOOGLE_TOKEN_URL,
        "ID_TOKEN_ISSUER": "https://accounts.google.com",
    },
    "facebook": {
        "APPS": (
            [{"client_id": SOCIAL_FACEBOOK_APP_ID, "secret": SOCIAL_FACEBOOK_APP_SECRET, "key": ""}]
            if SOCIAL_FACEBOOK_APP_ID
            else []
        ),
        "SCOPE": ["email", "public_profile"],
        "FIELDS": ["id", "email", "name", "first_name", "last_name"],
        "VERSION": SOCIAL_FACEBOOK_GRAPH_VERSION,
        "GRAPH_API_URL": SOCIAL_FACEBOOK_GRAPH_URL,
    },
    "openid_connect": {
        "APPS": (
            [
                {
                    "provider_id": "line",
                    "name": "LINE",
                    "client_id": SOCIAL_LINE_CHANNEL_ID,
                    "secret": SOCIAL_LINE_CHANNEL_SECRET,
                    "settings": {"server_url": SOCIAL_LINE_SERVER_URL},
                }
            ]
            if SOCIAL_LINE_CHANNEL_ID
            else []
        ),
    },
}
JWT_COOKIE_SAMESITE = "Lax"
# How long a process reuses the user row a JWT names before reading it again
# (accounts.authentication.user_row_cache): the bound on how late another process's
# deactivation or soft delete is seen (a change in the same process is seen at once). 0 = off.
AUTH_USER_CACHE_SECONDS = env.int("AUTH_USER_CACHE_SECONDS", default=5)

SPECTACULAR_SETTINGS = {
    "TITLE": "Credit-metered SaaS API",
    "DESCRIPTION": "Accounts, credits, jobs, shops, analytics and backups.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every operation documents the error envelope for 400/401/403/404/409/415/429/503 (config/openapi.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.add_error_responses",
        "config.openapi.require_response_fields",
    ],
    # Several models name a field status/kind/role/provider; give each choice set its own name.
    "ENUM_NAME_OVERRIDES": {
        "LicenseStatusEnum": "accounts.models.License.Status",
        "SubscriptionStatusEnum": "accounts.models.Subscription.Status",
        "PaymentStatusEnum": "credits.models.Payment.Status",
        "PaymentProviderEnum": "credits.models.Provider",
        "PaidPaymentProviderEnum": "shops.serializers.PAID_PROVIDER_CHOICES",
        "JobStatusEnum": "jobs.states.JobStatus",
        "ProjectStatusEnum": "jobs.states.ProjectStatus",
        "JobFileRoleEnum": "jobs.models.JobFile.Role",
        "LengthUnitsEnum": "jobs.models.LENGTH_UNITS",
        "ShopRoleEnum": "shops.models.Role",
        "ItemKindEnum": "shops.models.Item.Kind",
        "PaymentMethodKindEnum": "shops.models.PaymentMethod.Kind",
        "ConversationStatusEnum": "shops.models.Conversation.Status",
        "OrderStatusEnum": "shops.models.OrderStatus",
        "IntegrationProviderEnum": "shops.models.SocialIntegration.Provider",
        "MessageSenderEnum": "shops.models.Message.Sender",
        "MessageDeliveryStatusEnum": "shops.models.Message.DeliveryStatus",
        "BackupKindEnum": "backups.models.BackupLog.Kind",
    },
}

# Celery: late acks, requeue on worker loss, one message at a time per process.
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


# Every queue the project uses, so a plain `celery -A config worker` consumes all of them;
# a deployment that wants dedicated engine workers starts them with `-Q jobs`.
# On RabbitMQ (CELERY_BROKER_URL=amqp://…) they are durable quorum queues (replicated, and Celery
# then uses per-consumer prefetch) on topic exchanges, which let Celery delay a countdown message
# in RabbitMQ itself (native delayed delivery) instead of holding it in a worker. On Redis they
# stay plain (kombu's Redis transport keeps exchange types per process, so a topic exchange there
# can route nowhere). Priority is not the broker's business on either: a message is a wake-up
# and the engine claims jobs from PostgreSQL by priority, so no queue needs x-max-priority
# (which quorum queues refuse).
def is_amqp(url: str) -> bool:
    return url.split("://", 1)[0] in ("amqp", "amqps", "pyamqp")


QUORUM = {"x-queue-type": "quorum"}


def celery_queues(url: str) -> list[Queue]:
    """The queues every worker consumes, declared as the broker at `url` wants them."""
    if is_amqp(url):
        return [
            Queue(name, Exchange(name, type="topic"), routing_key=name, queue_arguments=QUORUM)
            for name in ("default", "jobs")
        ]
    return [Queue(name, routing_key=name) for name in ("default", "jobs")]


CELERY_TASK_QUEUES = celery_queues(CELERY_BROKER_URL)
# A worker process is replaced once it has used this much resident memory (KiB) after a task:
# a huge mesh import cannot keep its memory for the life of the worker.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env.int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", default=512 * 1024)
CELERY_WORKER_MAX_TASKS_PER_CHILD = env.int("CELERY_WORKER_MAX_TASKS_PER_CHILD", default=1000)
# Publishing while Redis is down must not hold a request for long: fail fast, log, and let the
# beat rescue re-announce the work.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=1.0)
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_TASK_TIME_LIMIT = 60 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 55 * 60
# Redis: a visibility timeout longer than the longest task (time limit above), so Redis never
# redelivers a running task. RabbitMQ redelivers an unacknowledged message only when its
# consumer's connection closes (consumer_timeout in rabbitmq.conf must exceed the time limit),
# and confirms each publish, so a message the broker did not take is an error, not a loss.
BROKER_TRANSPORT_OPTIONS_REDIS = {
    "visibility_timeout": 2 * 60 * 60,
    "socket_connect_timeout": 1.0,
    "socket_timeout": 5.0,
}
BROKER_TRANSPORT_OPTIONS_AMQP = {"confirm_publish": True}


def broker_transport_options(url: str) -> dict:
    """The transport options for the broker `url` names (RabbitMQ or Redis)."""
    return dict(BROKER_TRANSPORT_OPTIONS_AMQP if is_amqp(url) else BROKER_TRANSPORT_OPTIONS_REDIS)


CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(CELERY_BROKER_URL)
# RabbitMQ: an idle worker's event loop wakes only for its timers, at most every 10 s, and only
# then sees a warm shutdown (SIGTERM). Checking the connection's heartbeat (120 s) every 2 s
# gives it a timer that often, so a worker stops within 2 s; each check is a clock comparison,
# and an idle connection sends an 8-byte heartbeat frame every 2 s. Redis is unaffected.
CELERY_BROKER_HEARTBEAT_CHECKRATE = 60.0
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Jobs engine. Worker subprocesses (tests, benchmarks) are tuned through these
# environment variables, so every process reads the same names.
JOBS_QUEUE = env("JOBS_QUEUE", default="jobs")
# A worker's first claim takes JOBS_CLAIM_BATCH jobs; each later one as many as the last batch
# suggests it finishes within JOBS_CLAIM_WINDOW_SECONDS, up to JOBS_CLAIM_BATCH_MAX, and never
# fewer than JOBS_CLAIM_BATCH unless the jobs are long (jobs.engine.claim_size).
JOBS_CLAIM_BATCH = env.int("JOBS_CLAIM_BATCH", default=8)
JOBS_CLAIM_BATCH_MAX = env.int("JOBS_CLAIM_BATCH_MAX", default=64)
JOBS_CLAIM_WINDOW_SECONDS = env.float("JOBS_CLAIM_WINDOW_SECONDS", default=0.25)
JOBS_DRAIN_SECONDS = env.float("JOBS_DRAIN_SECONDS", default=30.0)
JOBS_HEARTBEAT_SECONDS = env.float("JOBS_HEARTBEAT_SECONDS", default=10.0)
JOBS_STALE_AFTER_SECONDS = env.float("JOBS_STALE_AFTER_SECONDS", default=90.0)
JOBS_RETRY_BASE_SECONDS = env.float("JOBS_RETRY_BASE_SECONDS", default=10.0)
JOBS_RETRY_MAX_SECONDS = env.float("JOBS_RETRY_MAX_SECONDS", default=15 * 60.0)
# External workers' pull protocol (jobs.worker_protocol): the lease a claim or heartbeat gives
# when the worker names none, the longest it may ask for, the most jobs one claim takes, and
# how long a signed input download URL stays valid.
WORKER_LEASE_SECONDS = env.int("WORKER_LEASE_SECONDS", default=60)
WORKER_LEASE_MAX_SECONDS = env.int("WORKER_LEASE_MAX_SECONDS", default=3600)
WORKER_CLAIM_MAX = env.int("WORKER_CLAIM_MAX", default=10)
WORKER_DOWNLOAD_URL_SECONDS = env.int("WORKER_DOWNLOAD_URL_SECONDS", default=300)
JOBS_MAX_MODEL_BYTES = env.int("JOBS_MAX_MODEL_BYTES", default=50 * 1024 * 1024)
JOBS_MAX_VIDEO_BYTES = env.int("JOBS_MAX_VIDEO_BYTES", default=500 * 1024 * 1024)
JOBS_MAX_IMAGE_BYTES = env.int("JOBS_MAX_IMAGE_BYTES", default=10 * 1024 * 1024)
# Comma-separated modules registering extra processors (tests and benchmarks add test kinds).
JOBS_EXTRA_PROCESSOR_MODULES = env("JOBS_EXTRA_PROCESSOR_MODULES", default="")

# Logs are JSON lines: structlog renders our stdlib `logging` calls and
# django-structlog's request/task events alike, each carrying the request_id of the request
# that caused it, also inside the Celery tasks that request enqueued. LOG_FORMAT=console gives
# a readable key=value line for development.
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
_LOG_PRE_CHAIN = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": structlog.stdlib.ProcessorFormatter,
            "foreign_pre_chain": _LOG_PRE_CHAIN,
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        },
        "console": {
            "()": structlog.stdlib.ProcessorFormatter,
            "foreign_pre_chain": _LOG_PRE_CHAIN,
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.dev.ConsoleRenderer(colors=False),
            ],
        },
    },
    "filters": {"once_per_interval": {"()": "config.cache.OncePerInterval"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        # A Redis outage fails every cache call: one record per 10 s, not one per call.
        "config.cache": {"filters": ["once_per_interval"]},
    },
}
structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.filter_by_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.UnicodeDecoder(),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    cache_logger_on_first_use=True,
)
DJANGO_STRUCTLOG_CELERY_ENABLED = True
# The request id comes from config.middleware.RequestIdMiddleware, which validates any incoming
# X-Request-ID (or makes one) before django-structlog reads it.
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True

# Email: the console locally; by EMAIL_URL any django-environ scheme: smtp://,
# smtp+tls://user:pass@host:587 (STARTTLS; smtps:// means the same to django-environ),
# smtp+ssl://…:465 (implicit TLS), consolemail://, filemail:///path, memorymail://, dummymail://;
# an email service through django-anymail by EMAIL_BACKEND=anymail.backends.<esp>.EmailBackend
# and its credentials in ANYMAIL (JSON, e.g. {"MAILGUN_API_KEY": "..."}).
SITE_NAME = env("SITE_NAME", default="Credit-metered SaaS")
# The name authenticator apps show next to a staff member's admin TOTP code.
OTP_TOTP_ISSUER = f"{SITE_NAME} admin"
FRONTEND_URL = env("FRONTEND_URL", default="http://localhost:3000").rstrip("/")
# Where allauth sends a browser whose provider redirect failed (the app client's redirect flow).
HEADLESS_FRONTEND_URLS = {"socialaccount_login_error": f"{FRONTEND_URL}/account/provider/callback"}
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="no-reply@localhost")
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = env("EMAIL_BACKEND", default=_email["EMAIL_BACKEND"])
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or 25
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
# filemail:///var/mail/app writes each message as a file in /var/mail/app (django-environ drops
# the leading slash of the URL's path; it is put back, as in file:// URLs); filemail:// alone
# writes into .var/mail. The other schemes ignore it.
EMAIL_FILE_PATH = (
    "/" + _email["EMAIL_FILE_PATH"].lstrip("/")
    if _email["EMAIL_FILE_PATH"]
    else str(BASE_DIR / ".var" / "mail")
)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
ANYMAIL = env.json("ANYMAIL", default={})
# Password-reset links (Django's token generator) and email-verification links stay valid this long.
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3 * 60 * 60)
EMAIL_VERIFICATION_TIMEOUT = env.int("EMAIL_VERIFICATION_TIMEOUT", default=7 * 24 * 60 * 60)
# At most one reset email per address in this many seconds, whoever asks (no mail bombing).
PASSWORD_RESET_EMAIL_COOLDOWN = env.int("PASSWORD_RESET_EMAIL_COOLDOWN", default=5 * 60)

# A shop team invitation (POST /api/shops/<id>/members) can be accepted for this many hours.
SHOP_INVITATION_TTL_HOURS = env.int("SHOP_INVITATION_TTL_HOURS", default=7 * 24)

# Succeeded ScheduledRun rows are pruned after this many days (failed ones are kept).
SCHEDULED_RUN_KEEP_DAYS = env.int("SCHEDULED_RUN_KEEP_DAYS", default=30)

CSRF_FAILURE_VIEW = "config.exceptions.csrf_failure"

# Metrics (docs/OPERATIONS.md, "Metrics and alerts"). GET /metrics answers only a request carrying
# `Authorization: Bearer <METRICS_TOKEN>` (Prometheus's `authorization` scrape setting); without
# it, or while the token is empty, it is a 404 like any unknown path.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# prometheus-client's multiprocess mode: the folder where every gunicorn worker and Celery process
# of this machine writes its counts (prometheus-client reads the environment variable itself,
# so it must be in the processes' environment or `.env`); empty: each process counts in memory.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default="")

# Point-in-time recovery (pgBackRest; scripts/pitr_setup.sh, `backup_restore --to-time`,
# docs/OPERATIONS.md). The stanza and configuration file the setup script wrote; empty config:
# pgBackRest's own default (/etc/pgbackrest/pgbackrest.conf). pgBackRest and pg_ctl run as
# PITR_OS_USER when the command runs as root (PostgreSQL refuses root), else as the caller.
PGBACKREST_BIN = env("PGBACKREST_BIN", default="pgbackrest")
PGBACKREST_CONFIG = env("PGBACKREST_CONFIG", default="")
PGBACKREST_STANZA = env("PGBACKREST_STANZA", default="saas")
PITR_OS_USER = env("PITR_OS_USER", default="postgres")
