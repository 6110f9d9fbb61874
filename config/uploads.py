"""Uploads larger than FILE_UPLOAD_MAX_MEMORY_SIZE are spooled to a file in FILE_UPLOAD_TEMP_DIR,
which Django deletes when the request ends — unless the process dies first (SIGKILL, the OOM
killer, gunicorn's worker timeout), which leaves the file behind for good.

So each spooled file is held under an exclusive `flock` by the process writing it, for as long
as it is open. The kernel drops the lock when the process dies, however it dies, so "nobody holds
it" is exactly "its writer is gone": `upload_temp_sweep` deletes those files, and the gunicorn
master runs it at start and each time a worker exits (config/gunicorn.py).
"""

import fcntl
import os

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler


class LockedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Django's TemporaryFileUploadHandler, its file created in FILE_UPLOAD_TEMP_DIR and locked."""

    def new_file(self, *args, **kwargs):
        os.makedirs(settings.FILE_UPLOAD_TEMP_DIR, exist_ok=True)
        while True:
            super().new_file(*args, **kwargs)
            handle = self.file.file
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            # A sweep may have deleted the file between its creation and the lock (it was not
            # locked yet): then it has no name any more, and a fresh one is made.
            if os.fstat(handle.fileno()).st_nlink:
                return
            self.file.close()


def upload_temp_sweep(*, directory: str) -> int:
    """Delete the files in `directory` that no live process holds; returns how many.

    Safe to run at any time, from any process: a file being written or read by a request is
    locked and skipped. Files that are not regular files are left alone.
    """
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not entry.is_file(follow_symlinks=False):
            continue
        try:
            with open(entry.path, "rb") as handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live request holds it
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue  # its request finished meanwhile
    return removed
