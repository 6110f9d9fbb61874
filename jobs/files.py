"""What may be uploaded to a job, where it is stored, and how it is checked.

The extension picks the family; the family and role pick the storage prefix; the first bytes
must look like the claimed format (a renamed executable is not a video), and the size must be
within the family's limit. The content type stored is ours, never the client's.
"""

import hashlib
import re
import struct
from dataclasses import dataclass

from django.conf import settings

from config.exceptions import ApplicationError
from config.parsers import json_loads


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


# Every byte as " " (blank, line ends included) or "x" (anything else): the tokens of many lines
# are then counted with bytes.count, in C, however long a line is.
_BLANK_OR_NOT = bytes(0x20 if b in b" \t\r\v\f\n" else 0x78 for b in range(256))
_V_LINE = re.compile(rb"(?m)^[ \t]*v[ \t\r\v\f]")
_F_LINE = re.compile(rb"(?m)^[ \t]*f(?:[ \t\r\v\f][^\n]*)?$")
_F_NO_REFERENCE = re.compile(rb"(?m)^[ \t]*f[ \t\r\v\f]*$")
_F_ONE_REFERENCE = re.compile(rb"(?m)^[ \t]*f[ \t\v\f]+[^ \t\r\v\f\n]+[ \t\r\v\f]*$")


def _token_count(text: bytes) -> int:
    shape = text.translate(_BLANK_OR_NOT)
    return shape.count(b" x") + (shape[:1] == b"x")


class _ObjScan:
    """Vertex lines and the triangles of `f` lines of an OBJ, fed in chunks of any size.

    trimesh fans a polygon of n vertex references into n - 2 triangles, so a face is counted by
    its references, not by its line: one `f` line of 20 M indices is 20 M triangles. Memory is
    constant: a line is never held whole. The whole lines inside a chunk are counted with
    regular expressions and bytes.count (C speed); the line a chunk boundary cuts, and a line
    longer than a chunk, go through a small state machine that keeps only counters.
    """

    def __init__(self):
        self.vertices = 0
        self.triangles = 0
        self._start_line()

    def _start_line(self):
        self.head = b""  # the line's first bytes, blanks stripped, until its keyword is known
        self.kind = None  # b"v", b"f" or b"" (any other line) once known
        self.references = 0
        self.in_token = False

    def _end_line(self):
        if self.kind is None:
            self._classify(final=True)
        if self.kind == b"f":
            self.triangles += max(self.references - 2, 0)
        self._start_line()

    def _classify(self, *, final: bool = False) -> bytes:
        """Decide the line's kind once its keyword is complete; returns the bytes after it."""
        head = self.head
        if len(head) < 2 and not final:
            return b""
        keyword_ends = head[1:2] == b"" or head[1:2] in b" \t\r\v\f"
        self.kind = head[:1] if keyword_ends and head[:1] in (b"v", b"f") else b""
        if self.kind == b"v":
            self.vertices += 1
        rest = head[1:] if self.kind else b""
        self.head = b""
        return rest

    def _feed_part(self, part: bytes) -> None:
        """Bytes of the current line (no line end among them)."""
        if self.kind is None:
            self.head = (self.head + part).lstrip(b" \t")
            if len(self.head) < 2:
                return
            part = self._classify()
        if self.kind == b"f" and part:
            shape = part.translate(_BLANK_OR_NOT)
            self.references += shape.count(b" x") + (shape[:1] == b"x" and not self.in_token)
            self.in_token = shape[-1:] == b"x"

    def _feed_lines(self, lines: bytes) -> None:
        """Whole lines: sum over `f` lines of max(n - 2, 0) = R - 2L + 2·(lines with no
        reference) + (lines with one), R references on L lines."""
        self.vertices += len(_V_LINE.findall(lines))
        faces = _F_LINE.findall(lines)
        references = _token_count(b"\n".join(faces)) - len(faces)  # less each line's keyword
        self.triangles += (
            references
            - 2 * len(faces)
            + 2 * len(_F_NO_REFERENCE.findall(lines))
            + len(_F_ONE_REFERENCE.findall(lines))
        )

    def feed(self, chunk: bytes) -> None:
        first = chunk.find(b"\n")
        if first < 0:
            self._feed_part(chunk)
            return
        self._feed_part(chunk[:first])
        self._end_line()
        last = chunk.rfind(b"\n")
        if last > first:
            self._feed_lines(chunk[first + 1 : last + 1])
        self._feed_part(chunk[last + 1 :])

    def close(self) -> tuple[int, int]:
        self._end_line()
        return self.vertices, self.triangles


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
    scan = _ObjScan()
    while chunk := handle.read(SCAN_CHUNK):
        scan.feed(chunk)
    return scan.close()


# PLY scalar types and their sizes in a binary body (both spellings of the format).
_PLY_TYPES = {
    "char": "b", "int8": "b", "uchar": "B", "uint8": "B",
    "short": "h", "int16": "h", "ushort": "H", "uint16": "H",
    "int": "i", "int32": "i", "uint": "I", "uint32": "I",
    "float": "f", "float32": "f", "double": "d", "float64": "d",
}  # fmt: skip


class _PlyReader:
    """A forward-only reader of a PLY body, in SCAN_CHUNK pieces: `take(n)` returns n bytes
    (fewer at the end of the file); memory stays one chunk however large the file is."""

    def __init__(self, handle, start: bytes):
        self.handle, self.buffer, self.at = handle, start, 0

    def take(self, n: int) -> bytes:
        while len(self.buffer) - self.at < n:
            more = self.handle.read(max(SCAN_CHUNK, n))
            if not more:
                break
            self.buffer = self.buffer[self.at :] + more
            self.at = 0
        piece = self.buffer[self.at : self.at + n]
        self.at += len(piece)
        return piece

    def skip(self, n: int) -> bool:
        """Pass over n bytes without keeping them; False when the file ends first."""
        kept = len(self.buffer) - self.at
        if n <= kept:
            self.at += n
            return True
        n -= kept
        self.buffer, self.at = b"", 0
        while n > 0:
            more = self.handle.read(min(SCAN_CHUNK, n))
            if not more:
                return False
            n -= len(more)
        return True

    def skip_lines(self, n: int) -> bool:
        """Pass over n lines; False when the file ends first."""
        while n > 0:
            newlines = self.buffer.count(b"\n", self.at)
            if newlines >= n:
                for _ in range(n):
                    self.at = self.buffer.index(b"\n", self.at) + 1
                return True
            n -= newlines
            self.buffer, self.at = self.handle.read(SCAN_CHUNK), 0
            if not self.buffer:
                return False
        return True

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\n", self.at)) < 0:
            more = self.handle.read(SCAN_CHUNK)
            if not more:
                end = len(self.buffer)
                break
            self.buffer = self.buffer[self.at :] + more
            self.at = 0
        piece = self.buffer[self.at : end]
        self.at = end + 1
        return piece


def _ply_header(header: bytes) -> tuple[str, list[tuple[str, int, list[tuple]]], int]:
    """(format, [(element, count, properties)], offset of the body). A property is
    ("scalar", type) or ("list", count type, item type, name)."""
    end = header.find(b"end_header")
    newline = header.find(b"\n", end)
    if end < 0 or newline < 0:
        raise _invalid("The PLY header is missing or too long.")
    fmt, elements = "", []
    for line in header[:end].decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "format":
            fmt = parts[1]
        elif len(parts) == 3 and parts[0] == "element" and parts[2].isdigit():
            elements.append((parts[1], int(parts[2]), []))
        elif len(parts) == 5 and parts[0] == "property" and parts[1] == "list" and elements:
            if parts[2] not in _PLY_TYPES or parts[3] not in _PLY_TYPES:
                raise _invalid(f"The PLY header names an unknown type in: {line.strip()[:80]}")
            elements[-1][2].append(("list", parts[2], parts[3], parts[4]))
        elif len(parts) == 3 and parts[0] == "property" and elements:
            if parts[1] not in _PLY_TYPES:
                raise _invalid(f"The PLY header names an unknown type in: {line.strip()[:80]}")
            elements[-1][2].append(("scalar", parts[1]))
    return fmt, elements, newline + 1


def _ply_counts(handle, *, cap: int) -> tuple[int, int]:
    """(vertices, triangles): a face of n indices makes n - 2 triangles, so a polygon's indices
    are counted, not the header's face count (one face may list millions). The body is walked
    in one streaming pass (one chunk of memory), and the walk stops once `cap` triangles are
    passed: a count above the cap is refused whatever its exact value."""
    header = handle.read(PLY_MAX_HEADER_BYTES)
    fmt, elements, body = _ply_header(header)
    counts = {name: count for name, count, _ in elements}
    vertices = counts.get("vertex", 0)
    if "face" not in counts:
        return vertices, 0
    reader = _PlyReader(handle, header[body:])
    triangles = 0
    for name, count, properties in elements:
        faces = name == "face"
        if not faces and _ply_skip(reader, fmt, count, properties):
            continue
        for _ in range(count):
            record = _ply_record(reader, fmt, properties)
            if record is None:  # the body ends early: trimesh will refuse the file
                return vertices, max(triangles, counts["face"] if faces else 0)
            if faces:
                triangles += max(record - 2, 0)
                if triangles > cap:
                    return vertices, triangles
        if faces:
            return vertices, triangles
    return vertices, triangles


def _ply_skip(reader: _PlyReader, fmt: str, count: int, properties: list[tuple]) -> bool:
    """Pass over `count` records at once when they have a fixed shape (ASCII lines, or binary
    records of scalars only); False when they must be walked one by one."""
    if fmt == "ascii":
        reader.skip_lines(count)
        return True
    if any(prop[0] == "list" for prop in properties):
        return False
    reader.skip(count * sum(struct.calcsize(_PLY_TYPES[prop[1]]) for prop in properties))
    return True


def _ply_record(reader: _PlyReader, fmt: str, properties: list[tuple]) -> int | None:
    """Skip one element record; return the item count of its first list (0 without one), or
    None when the file ends first."""
    first_list = None
    if fmt == "ascii":
        tokens = reader.line().split()
        at = 0
        for prop in properties:
            if at >= len(tokens):
                return None
            if prop[0] == "list":
                try:
                    n = int(tokens[at])
                except ValueError:
                    raise _invalid("A PLY list count is not an integer.") from None
                if n < 0:
                    raise _invalid("A PLY list count is negative.")
                first_list = n if first_list is None else first_list
                at += 1 + n
            else:
                at += 1
        return first_list or 0
    order = ">" if fmt == "binary_big_endian" else "<"
    for prop in properties:
        if prop[0] == "list":
            code = order + _PLY_TYPES[prop[1]]
            raw = reader.take(struct.calcsize(code))
            if len(raw) < struct.calcsize(code):
                return None
            (n,) = struct.unpack(code, raw)
            if n < 0:
                raise _invalid("A PLY list count is negative.")
            first_list = n if first_list is None else first_list
            size = n * struct.calcsize(_PLY_TYPES[prop[2]])
        else:
            size = struct.calcsize(_PLY_TYPES[prop[1]])
        if not reader.skip(size):
            return None
    return first_list or 0


def _glb_counts(handle) -> tuple[int, int]:
    head = handle.read(20)
    if len(head) < 20 or head[:4] != b"glTF":
        raise _invalid("The GLB header is incomplete.")
    json_length, chunk_type = struct.unpack("<I4s", head[12:20])
    if chunk_type != b"JSON" or json_length > GLB_MAX_JSON_BYTES:
        raise _invalid("The GLB JSON chunk is missing or too large.")
    try:
        # json_loads: Infinity, NaN and 1e400 are refused, so a count is never int(inf).
        gltf = json_loads(handle.read(json_length))
        accessors = gltf.get("accessors", [])
        vertices = faces = 0
        for mesh in gltf.get("meshes", []):
            for primitive in mesh.get("primitives", []):
                position = _accessor_count(accessors[primitive["attributes"]["POSITION"]])
                vertices += position
                indices = primitive.get("indices")
                faces += (_accessor_count(accessors[indices]) if indices is not None else position) // 3
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise _invalid("The GLB JSON chunk is not a valid glTF document.") from None
    return vertices, faces


def _accessor_count(accessor: dict) -> int:
    """A glTF accessor's `count`: a non-negative integer (12.0 is 12). Raises ValueError."""
    count = accessor["count"]
    if isinstance(count, float) and count.is_integer():
        count = int(count)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError("an accessor count is not a non-negative integer")
    return count


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
            return _ply_counts(handle, cap=settings.JOBS_MAX_MESH_FACES)
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
