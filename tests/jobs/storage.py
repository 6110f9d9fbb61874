"""A file storage that refuses some writes, to inject storage failures into the engine."""

from django.core.files.storage import FileSystemStorage

FAIL_MARKER = b"storage fails"


class FailingStorage(FileSystemStorage):
    """The filesystem storage, except that a file whose content starts with FAIL_MARKER cannot
    be written (OSError, as a full disk or an unreachable bucket would raise)."""

    def _save(self, name, content):
        content.seek(0)
        head = content.read(len(FAIL_MARKER))
        content.seek(0)
        if head == FAIL_MARKER:
            raise OSError("injected storage write failure")
        return super()._save(name, content)
