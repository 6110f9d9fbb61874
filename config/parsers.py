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


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        _refuse_oversize(parser_context)
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # `[[[[…` nested deeper than the interpreter's stack is malformed input, not a crash.
            raise ParseError("JSON parse error - nested too deeply.") from None


class LimitedFormParser(FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        _refuse_oversize(parser_context)
        return super().parse(stream, media_type, parser_context)
