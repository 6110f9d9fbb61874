"""Storages that fail on purpose (test-only)."""

import errno

from django.core.files.storage import FileSystemStorage


class _Quota:
    def __init__(self, content, limit):
        self.content, self.limit, self.seen = content, limit, 0

    def chunks(self, chunk_size=None):
        for chunk in self.content.chunks(chunk_size):
            self.seen += len(chunk)
            if self.seen > self.limit:
                raise OSError(errno.ENOSPC, "No space left on device (test quota)")
            yield chunk


class TinyQuotaStorage(FileSystemStorage):
    """A local folder that runs out of space after `max_bytes` (disk full, simulated): the part
    already written stays on disk, as it would on a real full disk."""

    def __init__(self, max_bytes=4096, **kwargs):
        self.max_bytes = max_bytes
        super().__init__(**kwargs)

    def _save(self, name, content):
        return super()._save(name, _Quota(content, self.max_bytes))


class BrokenStorage(FileSystemStorage):
    """An offsite target that refuses every write (e.g. wrong credentials, bucket gone)."""

    def _save(self, name, content):
        raise PermissionError("AccessDenied: the bucket refused the upload (test)")
