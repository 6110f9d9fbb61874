"""What may be uploaded to a job, where it is stored, and how it is checked (SPEC §5).

The extension picks the family; the family and role pick the storage prefix; the first bytes
must look like the claimed format (a renamed executable is not a video), and the size must be
within the family's limit. The content type stored is ours, never the client's.
"""

import hashlib
from dataclasses import dataclass

from config.exceptions import ApplicationError
from jobs import conf


@dataclass(frozen=True)
class FileRule:
    family: str
    content_type: str


RULES = {
    "stl": FileRule("model", "model/stl"),
    "obj": FileRule("model", "model/obj"),
    "ply": FileRule("model", "application/x-ply"),
    "glb": FileRule("model", "model/gltf-binary"),
    "mp4": FileRule("video", "video/mp4"),
    "mov": FileRule("video", "video/quicktime"),
    "webm": FileRule("video", "video/webm"),
    "mkv": FileRule("video", "video/x-matroska"),
    "png": FileRule("image", "image/png"),
    "jpg": FileRule("image", "image/jpeg"),
    "jpeg": FileRule("image", "image/jpeg"),
    "webp": FileRule("image", "image/webp"),
}
MODEL_TYPES = ("stl", "obj", "ply", "glb")


def _magic_ok(ext: str, head: bytes) -> bool:
    if ext == "glb":
        return head[:4] == b"glTF"
    if ext == "ply":
        return head[:3] == b"ply"
    if ext in ("obj", "stl"):
        return len(head) > 0
    if ext == "png":
        return head[:8] == b"\x89PNG\r\n\x1a\n"
    if ext in ("jpg", "jpeg"):
        return head[:3] == b"\xff\xd8\xff"
    if ext == "webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if ext in ("mp4", "mov"):
        return head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free")
    if ext in ("webm", "mkv"):
        return head[:4] == b"\x1a\x45\xdf\xa3"
    return False


def _limit(family: str) -> int:
    return int(conf.get({"model": "JOBS_MAX_MODEL_BYTES", "video": "JOBS_MAX_VIDEO_BYTES",
                         "image": "JOBS_MAX_IMAGE_BYTES"}[family]))


def prefix_for(family: str, role: str) -> str:
    if family == "model":
        return "models/"
    if family == "image":
        return "thumbnails/"
    return "raw-videos/" if role == "input" else "final-videos/"


@dataclass(frozen=True)
class CheckedFile:
    ext: str
    prefix: str
    content_type: str
    size: int
    sha256: str


def _invalid(message: str, field: str = "file") -> ApplicationError:
    return ApplicationError("Invalid file.", code="validation_error", status_code=400,
                            fields={field: [message]})


def check_upload(uploaded, *, role: str, field: str = "file") -> CheckedFile:
    """Validate an uploaded file for `role`; raise a 400 `validation_error` when refused."""
    name = getattr(uploaded, "name", "") or ""
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    rule = RULES.get(ext)
    if rule is None:
        raise _invalid(f"Unsupported file type; allowed: {', '.join(sorted(RULES))}.", field)
    if role == "thumbnail" and rule.family != "image":
        raise _invalid("A thumbnail must be an image (png, jpg, webp).", field)
    if role != "thumbnail" and rule.family == "image":
        raise _invalid("Images are only accepted as thumbnails.", field)
    size = uploaded.size or 0
    if size <= 0:
        raise _invalid("The file is empty.", field)
    if size > _limit(rule.family):
        raise _invalid(f"The file is larger than {_limit(rule.family)} bytes.", field)
    digest = hashlib.sha256()
    head = b""
    uploaded.seek(0)
    for chunk in uploaded.chunks():
        if len(head) < 16:
            head += chunk[: 16 - len(head)]
        digest.update(chunk)
    uploaded.seek(0)
    if not _magic_ok(ext, head):
        raise _invalid(f"The content does not look like a .{ext} file.", field)
    return CheckedFile(ext=ext, prefix=prefix_for(rule.family, role), content_type=rule.content_type,
                       size=size, sha256=digest.hexdigest())
