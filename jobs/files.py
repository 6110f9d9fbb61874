"""What may be uploaded to a job, where it is stored, and how it is checked.

The extension picks the family; the family and role pick the storage prefix; the first bytes
must look like the claimed format (a renamed executable is not a video), and the size must be
within the family's limit. The content type stored is ours, never the client's.
"""

import hashlib
import json
import re
import struct
from dataclasses import dataclass

from django.conf import settings

from config.exceptions import ApplicationError


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
# Formats the engine writes (model exports) but uploads do not accept: they are not parsed on
# import, so RULES, which check_upload reads, leaves them out.
OUTPUT_RULES = {
    **RULES,
    "gltf": FileRule("model", "model/gltf+json"),
    "3mf": FileRule("model", "model/3mf"),
}


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
    name = {"model": "JOBS_MAX_MODEL_BYTES", "video": "JOBS_MAX_VIDEO_BYTES", "image": "JOBS_MAX_IMAGE_BYTES"}
    return int(getattr(settings, name[family]))


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
    return ApplicationError(
        "Invalid file.", code="validation_error", status_code=400, fields={field: [message]}
    )


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
    if rule.family == "model":
        check_mesh_size(uploaded, ext, size=size)
    return CheckedFile(
        ext=ext,
        prefix=prefix_for(rule.family, role),
        content_type=rule.content_type,
        size=size,
        sha256=digest.hexdigest(),
    )


# --- Declared mesh size (quotas) ---------------------------------------------------------------
# trimesh needs hundreds of bytes per face; a 47 MB OBJ of 5.9 M faces took ~2 GB in a worker.
# So the counts are read from what the file declares (STL/PLY/GLB headers) or counted by a
# streaming byte scan (OBJ, ASCII STL) in constant memory, and an oversize mesh is refused at
# upload, before a job, a model slot or a stored file exists.

GLB_MAX_JSON_BYTES = 16 * 1024 * 1024
PLY_MAX_HEADER_BYTES = 64 * 1024
SCAN_CHUNK = 1024 * 1024


class MeshTooLarge(ApplicationError):
    code = "mesh_too_large"


def _count_line_starts(handle, tokens: tuple[bytes, ...]) -> list[int]:
    """How many lines start with each token (leading blanks allowed), read in 1 MiB chunks."""
    counts = [0] * len(tokens)
    patterns = [re.compile(rb"(?m)^[ \t]*" + re.escape(token)) for token in tokens]
    carry = b""
    while chunk := handle.read(SCAN_CHUNK):
        data = carry + chunk
        cut = data.rfind(b"\n") + 1  # only whole lines are counted; the tail waits for more
        whole, carry = data[:cut], data[cut:]
        for i, pattern in enumerate(patterns):
            counts[i] += len(pattern.findall(whole))
    for i, pattern in enumerate(patterns):
        counts[i] += len(pattern.findall(carry))
    return counts


def _stl_counts(handle, size: int) -> tuple[int, int]:
    header = handle.read(84)
    if len(header) == 84:
        (triangles,) = struct.unpack("<I", header[80:84])
        if 84 + 50 * triangles == size:  # a binary STL says its size exactly
            return 3 * triangles, triangles
    handle.seek(0)
    (facets,) = _count_line_starts(handle, (b"facet",))
    return 3 * facets, facets


def _obj_counts(handle) -> tuple[int, int]:
    vertices, faces = _count_line_starts(handle, (b"v ", b"f "))
    return vertices, faces


def _ply_counts(handle) -> tuple[int, int]:
    header = handle.read(PLY_MAX_HEADER_BYTES)
    end = header.find(b"end_header")
    if end < 0:
        raise _invalid("The PLY header is missing or too long.")
    counts = {}
    for line in header[:end].decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "element" and parts[2].isdigit():
            counts[parts[1]] = int(parts[2])
    return counts.get("vertex", 0), counts.get("face", 0)


def _glb_counts(handle) -> tuple[int, int]:
    head = handle.read(20)
    if len(head) < 20 or head[:4] != b"glTF":
        raise _invalid("The GLB header is incomplete.")
    json_length, chunk_type = struct.unpack("<I4s", head[12:20])
    if chunk_type != b"JSON" or json_length > GLB_MAX_JSON_BYTES:
        raise _invalid("The GLB JSON chunk is missing or too large.")
    try:
        gltf = json.loads(handle.read(json_length))
        accessors = gltf.get("accessors", [])
        vertices = faces = 0
        for mesh in gltf.get("meshes", []):
            for primitive in mesh.get("primitives", []):
                position = int(accessors[primitive["attributes"]["POSITION"]]["count"])
                vertices += position
                indices = primitive.get("indices")
                faces += (int(accessors[indices]["count"]) if indices is not None else position) // 3
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
        raise _invalid("The GLB JSON chunk is not a valid glTF document.") from None
    return vertices, faces


def declared_mesh_counts(handle, ext: str, size: int) -> tuple[int, int]:
    """(vertices, faces) a model file declares, reading at most its header or one streaming pass.

    `handle` is a binary file object positioned anywhere; it is rewound before and after.
    Raises a 400 validation_error when the header cannot be read.
    """
    handle.seek(0)
    try:
        if ext == "stl":
            return _stl_counts(handle, size)
        if ext == "obj":
            return _obj_counts(handle)
        if ext == "ply":
            return _ply_counts(handle)
        if ext == "glb":
            return _glb_counts(handle)
        raise _invalid(f"Not a model file type: .{ext}.")
    finally:
        handle.seek(0)


def check_mesh_size(handle, ext: str, *, size: int | None = None) -> tuple[int, int]:
    """Refuse (400 `mesh_too_large`) a model whose declared vertex or face count exceeds
    JOBS_MAX_MESH_FACES. Returns the declared (vertices, faces)."""
    size = size if size is not None else (getattr(handle, "size", None) or 0)
    vertices, faces = declared_mesh_counts(handle, ext, size)
    limit = settings.JOBS_MAX_MESH_FACES
    if faces > limit or vertices > limit:
        raise MeshTooLarge(
            f"The model declares {vertices} vertices and {faces} faces; at most "
            f"{limit} of each are accepted.",
            status_code=400,
        )
    return vertices, faces


_UNSAFE_NAME_CHARS = re.compile(r"[^\w.\- ()]+")


def download_name(original_name: str, file_type: str, role: str) -> str:
    """The filename offered to a browser: no directories, no control or quoting characters,
    at most 120 characters, always ending in the stored type's extension."""
    base = (original_name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE_NAME_CHARS.sub("_", base).strip(" ._")
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = stem[:100].strip(" ._") or role
    return f"{stem}.{file_type}" if file_type else stem
