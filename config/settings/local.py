"""Developer machine: `make run` uses these."""

from urllib.parse import urlsplit

from .base import *  # noqa: F403
from .base import CORS_ALLOWED_ORIGINS, FRONTEND_URL, env

DEBUG = env.bool("DEBUG", default=True)

# The local frontend (FRONTEND_URL, default http://localhost:3000) calls the API from the
# browser: its origin gets CORS headers in development, Bearer and cookie requests alike.
_frontend = urlsplit(FRONTEND_URL)
_frontend_origin = f"{_frontend.scheme}://{_frontend.netloc}"
CORS_ALLOWED_ORIGINS = [
    *CORS_ALLOWED_ORIGINS,
    *([_frontend_origin] if _frontend_origin not in CORS_ALLOWED_ORIGINS else []),
]
