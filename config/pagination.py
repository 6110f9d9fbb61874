"""List pagination whose cost does not grow with the caller's history.

Two modes, one response shape `{count, next, previous, results}`:

- `?page=N&page_size=M` (M ≤ 100): OFFSET paging. The count never scans more than
  `PAGINATION_COUNT_LIMIT` rows: past that many matches `count` is that limit and the response
  carries `X-Count-Capped: true`; pages past it still work (`next` is given whenever a page
  is full), they only cost what their OFFSET costs.
- `?cursor=` (empty for the first page, then the opaque `next`/`previous` links): keyset paging
  on the list's own ordering (ending with the primary key, so every row has one place). A page
  costs the same at row 20 and at row 1,000,000, and rows inserted while a client pages do not
  shift the pages it has yet to read. `count` is null in this mode: counting is what it avoids.
"""

import base64
import binascii
import json
from collections import OrderedDict

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import Q
from rest_framework.exceptions import NotFound
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from config.exceptions import ApplicationError
from config.parsers import json_loads

# The largest OFFSET + LIMIT PostgreSQL takes (bigint).
MAX_OFFSET = 2**63 - 1


class InvalidCursor(ApplicationError):
    code = "invalid_cursor"


class StandardPagination(BasePagination):
    page_size = 20
    max_page_size = 100
    page_query_param = "page"
    page_size_query_param = "page_size"
    cursor_query_param = "cursor"

    # -- shared ----------------------------------------------------------------------------------

    def get_page_size(self, request) -> int:
        """`page_size` is a positive integer, at most `max_page_size` rows are given (a larger
        one is served as the largest); anything else is a 400 like any other wrong type."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size <= 0:
            raise ApplicationError(
                "Invalid page size.",
                code="validation_error",
                fields={self.page_size_query_param: ["A positive integer is required."]},
            )
        return min(size, self.max_page_size)

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.size = self.get_page_size(request)
        self.count_capped = False
        if self.cursor_query_param in request.query_params:
            self.mode = "cursor"
            return self._cursor_page(queryset, request.query_params[self.cursor_query_param])
        self.mode = "page"
        return self._number_page(queryset, request.query_params.get(self.page_query_param, "1"))

    def get_paginated_response(self, data):
        response = Response(
            OrderedDict(
                [
                    ("count", self.count),
                    ("next", self.next_link),
                    ("previous", self.previous_link),
                    ("results", data),
                ]
            )
        )
        if self.count_capped:
            response["X-Count-Capped"] = "true"
        return response

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["count", "next", "previous", "results"],
            "properties": {
                "count": {
                    "type": "integer",
                    "nullable": True,
                    "description": "Matches, counted up to PAGINATION_COUNT_LIMIT; null with ?cursor=",
                },
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "Page number (1-based).",
                "schema": {"type": "integer"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page (a larger value gives {self.max_page_size}).",
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Keyset paging: empty for the first page, then the next/previous links.",
                "schema": {"type": "string"},
            },
        ]

    # -- ?page= ----------------------------------------------------------------------------------

    def _number_page(self, queryset, raw_page):
        try:
            number = int(raw_page)
        except (TypeError, ValueError):
            raise NotFound("Invalid page.") from None
        # A page whose OFFSET PostgreSQL cannot hold (bigint) has no rows either way.
        if number < 1 or number * self.size > MAX_OFFSET:
            raise NotFound("Invalid page.")
        limit = settings.PAGINATION_COUNT_LIMIT
        # COUNT over a LIMITed subquery: never reads more than limit + 1 index entries.
        counted = queryset.order_by()[: limit + 1].count()
        self.count_capped = counted > limit
        self.count = min(counted, limit)
        offset = (number - 1) * self.size
        rows = list(queryset[offset : offset + self.size + 1])
        if not rows and number > 1:
            raise NotFound("Invalid page.")
        has_next = len(rows) > self.size
        url = self.request.build_absolute_uri()
        self.next_link = replace_query_param(url, self.page_query_param, number + 1) if has_next else None
        if number == 1:
            self.previous_link = None
        elif number == 2:
            self.previous_link = remove_query_param(url, self.page_query_param)
        else:
            self.previous_link = replace_query_param(url, self.page_query_param, number - 1)
        return rows[: self.size]

    # -- ?cursor= --------------------------------------------------------------------------------

    def _ordering(self, queryset) -> list[tuple[str, bool]]:
        """The queryset's ordering as (field, descending), ending with the primary key."""
        ordering = list(queryset.query.order_by or queryset.model._meta.ordering or [])
        fields = []
        for item in ordering:
            if not isinstance(item, str) or "__" in item or item.startswith("?"):
                raise InvalidCursor("This list cannot be paged by cursor.")
            name = item.lstrip("-")
            name = queryset.model._meta.pk.name if name == "pk" else name
            fields.append((name, item.startswith("-")))
        pk = queryset.model._meta.pk.name
        if pk not in {name for name, _ in fields}:
            fields.append((pk, fields[0][1] if fields else False))
        return fields

    def _decode(self, token: str, fields) -> tuple[list, bool]:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = json_loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            values, reverse = data["v"], bool(data.get("r"))
            if not isinstance(values, list) or len(values) != len(fields):
                raise ValueError
            meta = self.model._meta
            return [
                meta.get_field(name).to_python(value) for (name, _), value in zip(fields, values, strict=True)
            ], reverse
        except (
            ValueError,
            KeyError,
            TypeError,
            UnicodeError,
            binascii.Error,
            ValidationError,
            FieldDoesNotExist,
        ):
            raise InvalidCursor("The cursor is not valid for this list.") from None

    @staticmethod
    def _encode(values, reverse: bool) -> str:
        raw = json.dumps(
            {"v": [None if v is None else str(v) for v in values], "r": reverse}, separators=(",", ":")
        ).encode()
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @staticmethod
    def _after(fields, values, reverse: bool) -> Q:
        """Rows strictly after `values` in the ordering (before them when `reverse`).

        The OR of the keyset steps is led by a non-strict bound on the first field, which the
        list's index can start its range scan at; without it PostgreSQL reads the index from the
        first page and filters its way down to the cursor (a deep page would cost its depth).
        """
        condition = Q()
        for i, (name, descending) in enumerate(fields):
            step = Q(**{f"{fields[j][0]}": values[j] for j in range(i)})
            lookup = "lt" if descending != reverse else "gt"
            condition |= step & Q(**{f"{name}__{lookup}": values[i]})
        first, descending = fields[0]
        return Q(**{f"{first}__{'lte' if descending != reverse else 'gte'}": values[0]}) & condition

    def _cursor_page(self, queryset, token: str):
        self.model = queryset.model
        self.count = None
        fields = self._ordering(queryset)
        values, reverse = self._decode(token, fields) if token else (None, False)
        order = [f"{'-' if desc != reverse else ''}{name}" for name, desc in fields]
        page = queryset.order_by(*order)
        if values is not None:
            page = page.filter(self._after(fields, values, reverse))
        rows = list(page[: self.size + 1])
        more = len(rows) > self.size
        rows = rows[: self.size]
        if reverse:
            rows.reverse()
        url = self.request.build_absolute_uri()

        def link(row, towards_start: bool):
            key = [getattr(row, name) for name, _ in fields]
            return replace_query_param(url, self.cursor_query_param, self._encode(key, towards_start))

        has_next = more if not reverse else True
        has_previous = (values is not None) if not reverse else more
        self.next_link = link(rows[-1], False) if rows and has_next else None
        self.previous_link = link(rows[0], True) if rows and has_previous else None
        if not rows and reverse:  # nothing before the first row: next is the first page
            self.next_link = replace_query_param(url, self.cursor_query_param, "")
        return rows
