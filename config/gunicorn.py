"""gunicorn's settings: `gunicorn -c config/gunicorn.py config.wsgi:application` (the Procfile).

Limits. gunicorn answers a request line, a header or a header count over its limits itself,
with an HTML page (400, 414 or 431) that never reaches Django, and offers no setting to change
that page. So the front proxy enforces these limits first, answering in its own (configurable)
way, and gunicorn's are set above the proxy's: they only stop a client that bypasses the proxy.
With nginx's defaults (`large_client_header_buffers 4 8k`: a request line or one header of at
most 8 KiB, 32 KiB of headers in all) that means: the longest request line gunicorn accepts
(8190), header fields up to 16 KiB, and as many fields as 32 KiB of headers can hold. README.md
("Running it in production") has the nginx side.

Metrics. With PROMETHEUS_MULTIPROC_DIR set, every worker writes its counts to files there and
/metrics sums them (config/metrics.py); when a worker exits, the master marks it dead, so its
gauges of live processes go while its counts stay in the totals.

Uploads. A worker killed mid-request (timeout, OOM, SIGKILL) leaves its spooled upload behind:
the master deletes such files when it starts and whenever a worker exits (config/uploads.py).
"""

import os

# The longest request line gunicorn takes (its maximum); nginx refuses longer ones first (414).
limit_request_line = 8190
# One header line: twice nginx's 8 KiB buffer.
limit_request_field_size = 16380
# Header count: more than 32 KiB of headers can hold (a minimal header is 4 bytes).
limit_request_fields = 10000


def _sweep_uploads(server) -> None:
    # The same settings module config.wsgi picks; only settings are read, no app is loaded.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    from django.conf import settings

    from config.uploads import upload_temp_sweep

    removed = upload_temp_sweep(directory=settings.FILE_UPLOAD_TEMP_DIR)
    if removed and server is not None:
        server.log.info("removed %d upload file(s) left by dead workers", removed)


def on_starting(server):
    _sweep_uploads(server)


def _mark_dead(pid: int) -> None:
    from django.conf import settings
    from prometheus_client import multiprocess

    if settings.PROMETHEUS_MULTIPROC_DIR:
        multiprocess.mark_process_dead(pid, settings.PROMETHEUS_MULTIPROC_DIR)


def child_exit(server, worker):
    _sweep_uploads(server)
    if worker is not None:
        _mark_dead(worker.pid)
