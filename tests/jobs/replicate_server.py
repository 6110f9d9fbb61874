"""A local stand-in for Replicate's HTTP API, started by a test: a real HTTP server the official
SDK is pointed at (REPLICATE_API_BASE), which checks each request against Replicate's documented
wire format and answers as Replicate does.

Create a prediction (https://replicate.com/docs/reference/http#predictions.create):
`POST /v1/predictions`, `Authorization: Bearer <token>`, JSON `{"version", "input",
"webhook", "webhook_events_filter"}` (events among start, output, logs, completed) → 201 with the
prediction object {id, model, version, input, logs, output, error, status "starting",
created_at, urls: {get, cancel}}. A bad token is 401, an unknown version 422, both as problem
details (RFC 7807: {title, detail, status}). `script(...)` queues answers (500, 429…) given
before the normal behaviour; `answer_delay` holds the 201 of a created prediction back (an
answer lost to the client's timeout). `POST /v1/predictions/<id>/cancel` → 200 with the
prediction, `canceled`.

It also serves output files (`GET /files/<name>`, as replicate.delivery does) and records every
request; a request that breaks the format is answered 400 and recorded in `violations`, which
the tests assert is empty.
"""

import base64
import hashlib
import hmac
import itertools
import json
import struct
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREDICTIONS = "/v1/predictions"
TOKEN = "r8_local_test_token"
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
EVENTS = {"start", "output", "logs", "completed"}
# The signing secret as Replicate's dashboard shows it: "whsec_" + base64 of the key.
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"replicate-local-signing-key-32by").decode()


def png_bytes() -> bytes:
    """A valid 1×1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def signed_headers(body: bytes, *, webhook_id: str, timestamp: int, secret: str = WEBHOOK_SECRET) -> dict:
    """The headers Replicate sends with a webhook (Standard Webhooks): HMAC-SHA256 of
    "<id>.<timestamp>.<body>" with the base64-decoded part of the secret after "whsec_"."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "HTTP_WEBHOOK_ID": webhook_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(timestamp),
        "HTTP_WEBHOOK_SIGNATURE": f"v1,{signature}",
    }


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: object


@dataclass
class ReplicateServer:
    token: str = TOKEN
    versions: tuple = (VERSION,)
    files: dict = field(default_factory=dict)  # name → (status, bytes)
    requests: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    scripted: deque = field(default_factory=deque)
    predictions: dict = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    # Seconds to wait before answering a creation, after the prediction is created: longer than
    # the client's timeout, the prediction runs although the client never learns its id.
    answer_delay: float = 0.0

    def script(self, *answers: tuple[int, object]) -> None:
        """Answer the next prediction creations with these (status, JSON body)."""
        self.scripted.extend(answers)

    def created(self) -> list[Seen]:
        return [r for r in self.requests if r.method == "POST" and r.path == PREDICTIONS]

    def file_url(self, name: str) -> str:
        return f"{self.url}/files/{name}"

    def answer(self, request: Seen) -> tuple[int, str, bytes]:
        with self.lock:
            self.requests.append(request)
        if request.method == "GET" and request.path.startswith("/files/"):
            status, data = self.files.get(request.path[len("/files/") :], (404, b"Not found"))
            return status, "application/octet-stream", data
        if request.method == "POST" and request.path == PREDICTIONS:
            problems = self._check_create(request)
            if problems:
                self.violations.extend(problems)
                return self._json(400, {"title": "Bad request", "detail": "; ".join(problems), "status": 400})
            with self.lock:
                if self.scripted:
                    return self._json(*self.scripted.popleft())
            return self._create(request)
        if request.method == "POST" and request.path.endswith("/cancel"):
            return self._cancel(request)
        self.violations.append(f"unexpected {request.method} {request.path}")
        return self._json(404, {"title": "Not found", "status": 404})

    @staticmethod
    def _json(status: int, body) -> tuple[int, str, bytes]:
        return status, "application/json", json.dumps(body).encode()

    def _check_create(self, request: Seen) -> list[str]:
        problems = []
        if not request.headers.get("content-type", "").startswith("application/json"):
            problems.append("Content-Type must be application/json")
        if not request.headers.get("authorization", "").startswith("Bearer "):
            problems.append("Authorization must be 'Bearer <token>'")
        body = request.body
        if not isinstance(body, dict):
            return [*problems, "the body must be a JSON object"]
        unknown = set(body) - {"version", "input", "webhook", "webhook_events_filter", "stream"}
        if unknown:
            problems.append(f"undocumented fields {sorted(unknown)}")
        if not isinstance(body.get("version"), str) or not body["version"]:
            problems.append("version is required")
        if not isinstance(body.get("input"), dict):
            problems.append("input must be an object")
        if not isinstance(body.get("webhook"), str) or not body["webhook"].startswith(
            ("http://", "https://")
        ):
            problems.append("webhook must be an http(s) URL")
        events = body.get("webhook_events_filter")
        if not isinstance(events, list) or not events or not set(events) <= EVENTS:
            problems.append(f"webhook_events_filter must list events among {sorted(EVENTS)}")
        return problems

    def _create(self, request: Seen) -> tuple[int, str, bytes]:
        if request.headers["authorization"] != f"Bearer {self.token}":
            return self._json(
                401,
                {
                    "title": "Unauthenticated",
                    "detail": "You did not pass a valid authentication token",
                    "status": 401,
                },
            )
        body = request.body
        if body["version"] not in self.versions:
            return self._json(
                422,
                {
                    "title": "Invalid version or not permitted",
                    "detail": (
                        "The specified version does not exist "
                        "(or perhaps you don't have permission to use it?)"
                    ),
                    "status": 422,
                },
            )
        with self.lock:
            prediction_id = f"p{next(self.ids):04d}qorzdhgbfurvjtvhg6dckhu"
        prediction = {
            "id": prediction_id,
            "model": "acme/image-maker",
            "version": body["version"],
            "input": body["input"],
            "logs": "",
            "output": None,
            "data_removed": False,
            "error": None,
            "status": "starting",
            "created_at": "2026-12-04T10:00:00.000000Z",
            "urls": {
                "cancel": f"{self.url}/v1/predictions/{prediction_id}/cancel",
                "get": f"{self.url}/v1/predictions/{prediction_id}",
                "web": f"https://replicate.com/p/{prediction_id}",
            },
        }
        self.predictions[prediction_id] = prediction
        if self.answer_delay:
            time.sleep(self.answer_delay)
        return self._json(201, prediction)

    def _cancel(self, request: Seen) -> tuple[int, str, bytes]:
        """`POST /v1/predictions/<id>/cancel` → 200 with the prediction, now canceled."""
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self._json(401, {"title": "Unauthenticated", "status": 401})
        prediction_id = request.path.split("/")[3]
        if prediction_id not in self.predictions:
            return self._json(404, {"title": "Not found", "detail": "Prediction not found", "status": 404})
        self.predictions[prediction_id] = {**self.predictions[prediction_id], "status": "canceled"}
        return self._json(200, self.predictions[prediction_id])


def start(server: ReplicateServer) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            status, content_type, payload = server.answer(
                Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _handle

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd
