from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, MultiPartParser

from config.parsers import LimitedJSONParser


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


class StrictJSONParser(LimitedJSONParser):
    """JSON may spell lone UTF-16 surrogates (`"\\ud800"`) that no UTF-8 text can hold: echoing one
    in an error message made the renderer fail with a 500. Such bodies are refused up front.

    Belongs in config.parsers for every app (reported to the lead); shops uses it meanwhile.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if _has_lone_surrogate(data):
            raise ParseError("JSON parse error - the body contains invalid Unicode (a lone surrogate).")
        return data


PARSERS = [StrictJSONParser, FormParser, MultiPartParser]
