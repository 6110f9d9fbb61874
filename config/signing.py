"""Signed webhooks: `X-Signature: t=<unix>,v1=<hex>`.

The signature is HMAC-SHA256 of `"<t>.<raw body>"` with the provider's secret. A timestamp
more than `tolerance` seconds away from now, in either direction, is refused, so a captured
delivery cannot be replayed later. Comparison is constant-time.
"""

import hashlib
import hmac
import time


class SignatureError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _digest(body: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The `X-Signature` header value for `body` (used by tests, benchmarks and senders)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={_digest(body, secret, timestamp)}"


def parse_header(header: str) -> tuple[int, list[str]]:
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError("invalid_signature_header", "X-Signature must be 't=<unix>,v1=<hex>'.")
    return timestamp, signatures


def verify(
    header: str | None, body: bytes, secret: str, *, tolerance: int = 300, now: int | None = None
) -> None:
    """Raise SignatureError unless `header` is a valid, fresh signature of `body`."""
    if not secret:
        raise SignatureError("webhook_not_configured", "No secret is configured for this provider.")
    if not header:
        raise SignatureError("missing_signature", "The X-Signature header is missing.")
    timestamp, signatures = parse_header(header)
    now = int(time.time()) if now is None else now
    if abs(now - timestamp) > tolerance:
        raise SignatureError("stale_signature", "The signature timestamp is outside the tolerance.")
    expected = _digest(body, secret, timestamp)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureError("invalid_signature", "The signature does not match.")
