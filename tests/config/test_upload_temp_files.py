"""Issue 19 §6: a worker killed mid-upload leaves no spooled file behind for long — the gunicorn
master deletes the files no live process holds, at start and whenever a worker exits. Tested by
SIGKILLing a real process that holds one."""

import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from config import gunicorn as gunicorn_config
from config.uploads import upload_temp_sweep
from tests.conftest import client_for

ROOT = Path(settings.BASE_DIR)
HOLD = """
import sys, time, django
django.setup()
from config.uploads import LockedTemporaryFileUploadHandler
handler = LockedTemporaryFileUploadHandler()
handler.new_file("input", "big.stl", "application/octet-stream", 10_000_000)
handler.receive_data_chunk(b"x" * 65536, 0)
print(handler.file.temporary_file_path(), flush=True)
time.sleep(300)
"""


@pytest.fixture
def upload_dir(tmp_path, settings):
    folder = tmp_path / "uploads"
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


@pytest.fixture
def holder(upload_dir):
    """A process mid-upload: its spooled file is written and open. Yields (process, path)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "FILE_UPLOAD_TEMP_DIR": str(upload_dir),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()  # the positive event: the file exists and is held
        assert line, process.stderr.read()
        yield process, Path(line.strip())
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        process.stdout.close()
        process.stderr.close()


def test_a_file_held_by_a_live_upload_is_kept(holder, upload_dir):
    _, path = holder

    assert upload_temp_sweep(directory=str(upload_dir)) == 0
    assert path.exists() and path.parent == upload_dir


def test_the_file_of_a_sigkilled_upload_is_removed_when_a_worker_exits(holder, upload_dir):
    process, path = holder
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert path.exists()  # what the kill leaves behind

    gunicorn_config.child_exit(None, None)  # the master's hook when a worker exits

    assert not path.exists()
    assert list(upload_dir.iterdir()) == []


def test_the_master_sweeps_at_start_too(holder, upload_dir):
    process, path = holder
    process.kill()
    process.wait(timeout=30)

    gunicorn_config.on_starting(None)

    assert not path.exists()


def test_the_procfile_runs_gunicorn_with_this_config():
    assert "gunicorn -c config/gunicorn.py config.wsgi:application" in (ROOT / "Procfile").read_text()


@pytest.mark.django_db
def test_a_large_upload_is_spooled_in_the_upload_dir_and_gone_after_the_request(user, upload_dir):
    from credits.services import credits_grant

    credits_grant(user=user, amount=1, idempotency_key="spool")
    triangles = 120_000  # a 6 MB binary STL: above FILE_UPLOAD_MAX_MEMORY_SIZE, so spooled
    data = b"\0" * 80 + struct.pack("<I", triangles) + b"\0" * (50 * triangles)
    assert len(data) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE

    response = client_for(user).post(
        "/api/jobs",
        {"kind": "model_import", "input": SimpleUploadedFile("big.stl", data)},
        format="multipart",
    )

    assert response.status_code == 201, response.content
    assert upload_dir.is_dir() and list(upload_dir.iterdir()) == []


def test_gunicorns_limits_are_above_nginxs_defaults():
    # nginx refuses first (large_client_header_buffers 4 8k): gunicorn's HTML pages are never
    # what a client behind the proxy sees (README, "Running it in production").
    nginx_buffer, nginx_buffers = 8 * 1024, 4
    assert gunicorn_config.limit_request_line >= nginx_buffer - 2  # 8190: gunicorn's maximum
    assert gunicorn_config.limit_request_field_size > nginx_buffer
    assert gunicorn_config.limit_request_fields * 4 > nginx_buffers * nginx_buffer
