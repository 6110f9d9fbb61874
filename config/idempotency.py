"""`Idempotency-Key` on creates: a retry with the same key and body answers the first response
and changes nothing; another body under the same key is 409 `idempotency_key_reused`.

Apply `@idempotent` to a view's create handler (under @extend_schema). The claim on the key,
the handler's writes and the stored answer share one transaction, so 20 concurrent retries
make one object: the others wait on the record's unique index and replay its answer. Keys
expire after IDEMPOTENCY_KEY_TTL (24 hours).
"""

import functools
import hashlib
import json
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from config.exceptions import ApplicationError, Conflict
from config.models import IdempotencyRecord

HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)


def _fingerprint(data) -> str:
    digest = hashlib.sha256()
    items = (
        data.lists() if hasattr(data, "lists") else (data.items() if isinstance(data, dict) else [("", data)])
    )
    for name, value in sorted(items, key=lambda pair: str(pair[0])):
        digest.update(str(name).encode())
        values = value if isinstance(value, list) and hasattr(data, "lists") else [value]
        for one in values:
            if hasattr(one, "chunks"):
                for chunk in one.chunks():
                    digest.update(chunk)
                one.seek(0)
            else:
                digest.update(json.dumps(one, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def idempotent(handler):
    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not 1 <= len(key) <= 255 or not key.isprintable():
            raise ApplicationError(
                "Invalid input.",
                code="validation_error",
                fields={HEADER: ["Use 1 to 255 printable characters."]},
            )
        owner = str(request.user.pk) if getattr(request.user, "is_authenticated", False) else ""
        scope = f"{request.method} {request.path.rstrip('/')}"
        fingerprint = _fingerprint(request.data)
        with transaction.atomic():
            IdempotencyRecord.objects.filter(
                owner=owner, scope=scope, key=key, created_at__lt=timezone.now() - IDEMPOTENCY_KEY_TTL
            ).delete()
            record, created = IdempotencyRecord.objects.get_or_create(
                owner=owner, scope=scope, key=key, defaults={"fingerprint": fingerprint}
            )
            if not created:
                if record.fingerprint != fingerprint:
                    raise Conflict(
                        "This Idempotency-Key was used with another request body.",
                        code="idempotency_key_reused",
                    )
                response = Response(record.body, status=record.status_code)
                response["Idempotent-Replayed"] = "true"
                return response
            response = handler(view, request, *args, **kwargs)
            if 200 <= response.status_code < 300:
                record.status_code = response.status_code
                record.body = json.loads(JSONRenderer().render(response.data) or b"null")
                record.save(update_fields=["status_code", "body", "updated_at"])
            else:
                transaction.set_rollback(True)
            return response

    wrapper.idempotent = True
    return wrapper
