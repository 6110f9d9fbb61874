from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, JSONParser


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


def _has_lone_surrogate(data) -> bool:
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


class LimitedJSONParser(JSONParser):
    """The project's JSON parser: size-capped, and refusing input no UTF-8 text can hold.

    JSON may spell lone UTF-16 surrogates (`"\\ud800"`); echoing one in an error message or
    storing it in PostgreSQL fails, so such bodies are a 400 up front.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        _refuse_oversize(parser_context)
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            # `[[[[…` nested deeper than the interpreter's stack is malformed input, not a crash.
            raise ParseError("JSON parse error - nested too deeply.") from None
        if _has_lone_surrogate(data):
            raise ParseError("JSON parse error - the body contains invalid Unicode (a lone surrogate).")
        return data


class LimitedFormParser(FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        _refuse_oversize(parser_context)
        return super().parse(stream, media_type, parser_context)
