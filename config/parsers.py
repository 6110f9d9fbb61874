import json
import math

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _refuse_oversize(parser_context) -> None:
    """Bodies above DATA_UPLOAD_MAX_MEMORY_SIZE are refused before they are read.

    DRF reads the request stream directly, which bypasses Django's own size check.
    """
    request = (parser_context or {}).get("request")
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if request is None or limit is None:
        return
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ParseError("Invalid Content-Length header.") from None
    if length > limit:
        raise ParseError(f"The request body is larger than {limit} bytes.")


def _texts(data, *, keys_only: bool = False):
    """Every string in a parsed JSON document: object keys, and values unless `keys_only`."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            yield from value.keys()
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and not keys_only:
            yield value


def _is_lone_surrogate_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def has_unstorable_text(data) -> bool:
    """True when a string or key in `data` holds what PostgreSQL text and jsonb cannot store:
    a NUL character or a lone UTF-16 surrogate."""
    return any("\x00" in text or _is_lone_surrogate_text(text) for text in _texts(data))


def _refuse_constant(name: str):
    raise ValueError(f"non-finite number {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 overflows to inf
        raise ValueError(f"number out of range: {text[:40]}")
    return value


# Arrays and objects nested deeper than this are refused wherever the API accepts JSON (request
# bodies, JSON carried in form fields, cursors in query strings). Real documents stay far below
# it; far deeper ones are stored fine but break whatever later renders them recursively (the
# admin's pretty-printer, Python's json with indent), and past ~1,000 levels parsing itself
# exhausts the interpreter's stack.
JSON_MAX_DEPTH = 64


def json_too_deep(data, limit: int = JSON_MAX_DEPTH) -> bool:
    """True when arrays/objects in `data` nest more than `limit` levels (a scalar is level 0)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def json_loads(body, **kwargs):
    """json.loads refusing NaN, Infinity and numbers that overflow a float (1e400): PostgreSQL
    jsonb cannot store them and Python's json would echo them back as invalid JSON. Also refuses
    documents nested deeper than JSON_MAX_DEPTH (and never raises RecursionError).
    Raises ValueError (json.JSONDecodeError is one)."""
    kwargs.setdefault("parse_float", _finite_float)
    try:
        data = json.loads(body, parse_constant=_refuse_constant, **kwargs)
    except RecursionError:
        data = None
    else:
        if not json_too_deep(data):
            return data
    raise ValueError(f"nested deeper than {JSON_MAX_DEPTH} levels")


class LimitedJSONParser(JSONParser):
    """The project's JSON parser: size-capped, and refusing input no UTF-8 text can hold.

    JSON may spell lone UTF-16 surrogates (`"\\ud800"`), which no UTF-8 text can hold (echoing
    one in an error message fails), and NUL (`"\\u0000"`), which PostgreSQL cannot store. Both
    are refused up front when no field could name them: surrogates anywhere, NUL in object keys.
    NUL in a string value is left to the field, whose validator names it (DRF's CharField does;
    free-form JSON fields check `has_unstorable_text`).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        _refuse_oversize(parser_context)
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json_loads(stream.read().decode(encoding))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {str(exc)[:200]}") from None
        if any(_is_lone_surrogate_text(t) for t in _texts(data)) or any(
            "\x00" in key for key in _texts(data, keys_only=True)
        ):
            raise _unstorable()
        return data


def _unstorable() -> ParseError:
    return ParseError(
        "JSON parse error - the body contains text that cannot be stored "
        "(a NUL character or a lone surrogate)."
    )


def parse_json_bytes(body: bytes):
    """Parse a raw body the way the API's parser would (for views that must read the raw bytes
    first, such as signed webhooks). Raises ParseError."""
    try:
        data = json_loads(body)
    except ValueError:
        raise ParseError("JSON parse error - the body is not valid JSON.") from None
    if has_unstorable_text(data):
        raise _unstorable()
    return data


def loggable_text(body: bytes, limit: int = 10_000) -> str:
    """The first `limit` bytes of a raw body as text a PostgreSQL column can hold."""
    return body[:limit].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
