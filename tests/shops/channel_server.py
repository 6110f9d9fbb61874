"""A local stand-in for the chat channels' APIs, started by a test: a real HTTP server that checks
every request against the channel's documented wire format and answers as the channel does.

LINE Messaging API (https://developers.line.biz/en/reference/messaging-api/#send-push-message):
`POST /v2/bot/message/push`, `Authorization: Bearer <channel access token>`, JSON
`{"to": <user id>, "messages": [{"type": "text", "text": …}]}` (1–5 messages), optional
`X-Line-Retry-Key` (a UUID: a key already accepted is answered 409 with
`x-line-accepted-request-id`); 200 `{"sentMessages": [{"id", "quoteToken"}]}` with
`x-line-request-id`; a bad token 401 `{"message": "Authentication failed…"}`.

Messenger Send API (https://developers.facebook.com/docs/messenger-platform/reference/send-api/):
`POST /<version>/me/messages?access_token=<page token>`, JSON `{"recipient": {"id"},
"messaging_type": "RESPONSE"|"UPDATE"|"MESSAGE_TAG", "message": {"text"}}`; 200
`{"recipient_id", "message_id"}`; a bad token 400 with Graph error code 190 (OAuthException).

A request that breaks the format is answered 400 and recorded in `violations`, which every test
asserts is empty. `script(path, …)` queues answers (429 with Retry-After, 5xx, 401…) that are
given before the normal behaviour; `hold` makes the next answers wait until released.
"""

import itertools
import json
import threading
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LINE_PUSH = "/v2/bot/message/push"
GRAPH_VERSION = "v21.0"
MESSENGER_SEND = f"/{GRAPH_VERSION}/me/messages"
LINE_AUTH_FAILED = (
    "Authentication failed. Confirm that the access token in the authorization header is valid."
)


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    headers: dict
    body: object


@dataclass
class ChannelServer:
    line_token: str = "line-channel-access-token"
    page_token: str = "page-access-token"
    requests: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    scripted: dict = field(default_factory=lambda: defaultdict(deque))
    accepted_retry_keys: dict = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)
    ids: itertools.count = field(default_factory=lambda: itertools.count(461230966842064897))
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def __post_init__(self):
        self.release.set()

    def script(self, path: str, *answers: tuple[int, dict, object]) -> None:
        """Answer the next requests to `path` with these (status, headers, JSON body)."""
        self.scripted[path].extend(answers)

    def hold(self) -> None:
        """Make calls wait (after being recorded) until `let_go()`."""
        self.release.clear()

    def let_go(self) -> None:
        self.release.set()

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    # -- the channels --------------------------------------------------------------------------

    def answer(self, request: Seen) -> tuple[int, dict, object]:
        with self.lock:
            self.requests.append(request)
            self.arrived.set()
        if request.path == LINE_PUSH and request.method == "POST":
            problems = self._check_line(request)
        elif request.path == MESSENGER_SEND and request.method == "POST":
            problems = self._check_messenger(request)
        else:
            problems = [f"unexpected {request.method} {request.path}"]
        if problems:
            self.violations.extend(problems)
            return 400, {}, {"message": "; ".join(problems)}
        self.release.wait(timeout=60)
        with self.lock:
            if self.scripted[request.path]:
                return self.scripted[request.path].popleft()
        if request.path == LINE_PUSH:
            return self._line(request)
        return self._messenger(request)

    def _check_line(self, request: Seen) -> list[str]:
        problems = []
        if not request.headers.get("content-type", "").startswith("application/json"):
            problems.append("LINE: Content-Type must be application/json")
        if not request.headers.get("authorization", "").startswith("Bearer "):
            problems.append("LINE: Authorization must be 'Bearer <channel access token>'")
        key = request.headers.get("x-line-retry-key")
        if key is not None:
            try:
                uuid.UUID(key)
            except ValueError:
                problems.append("LINE: X-Line-Retry-Key must be a UUID")
        body = request.body
        if not isinstance(body, dict) or not isinstance(body.get("to"), str) or not body["to"]:
            return [*problems, "LINE: body needs 'to'"]
        unknown = set(body) - {"to", "messages", "notificationDisabled", "customAggregationUnits"}
        if unknown:
            problems.append(f"LINE: undocumented push fields {sorted(unknown)}")
        messages = body.get("messages")
        if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
            return [*problems, "LINE: 'messages' must hold 1 to 5 messages"]
        for message in messages:
            if message.get("type") != "text" or not isinstance(message.get("text"), str):
                problems.append("LINE: a text message is {type: text, text}")
            elif not 1 <= len(message["text"]) <= 5000:
                problems.append("LINE: text must be 1 to 5000 characters")
        return problems

    def _line(self, request: Seen) -> tuple[int, dict, object]:
        if request.headers["authorization"] != f"Bearer {self.line_token}":
            return (
                401,
                {},
                {"message": LINE_AUTH_FAILED},
            )
        key = request.headers.get("x-line-retry-key")
        with self.lock:
            if key in self.accepted_retry_keys:
                return (
                    409,
                    {"x-line-accepted-request-id": self.accepted_retry_keys[key]},
                    {"message": "The retry key is already accepted"},
                )
            request_id = str(uuid.uuid4())
            if key:
                self.accepted_retry_keys[key] = request_id
            message_id = str(next(self.ids))
        return (
            200,
            {"x-line-request-id": request_id},
            {"sentMessages": [{"id": message_id, "quoteToken": "q" + message_id}]},
        )

    def _check_messenger(self, request: Seen) -> list[str]:
        problems = []
        if not request.headers.get("content-type", "").startswith("application/json"):
            problems.append("Messenger: Content-Type must be application/json")
        if not request.query.get("access_token"):
            problems.append("Messenger: access_token query parameter is required")
        body = request.body
        if not isinstance(body, dict):
            return [*problems, "Messenger: body must be a JSON object"]
        unknown = set(body) - {"recipient", "messaging_type", "message", "tag", "notification_type"}
        if unknown:
            problems.append(f"Messenger: undocumented Send API fields {sorted(unknown)}")
        recipient = body.get("recipient")
        if not isinstance(recipient, dict) or not isinstance(recipient.get("id"), str):
            problems.append("Messenger: recipient.id is required")
        if body.get("messaging_type") not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
            problems.append("Messenger: messaging_type must be RESPONSE, UPDATE or MESSAGE_TAG")
        message = body.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("text"), str):
            problems.append("Messenger: message.text is required")
        elif not 1 <= len(message["text"]) <= 2000:
            problems.append("Messenger: text must be 1 to 2000 characters")
        return problems

    def _messenger(self, request: Seen) -> tuple[int, dict, object]:
        if request.query["access_token"] != self.page_token:
            return (
                400,
                {},
                {
                    "error": {
                        "message": "Invalid OAuth access token - Cannot parse access token",
                        "type": "OAuthException",
                        "code": 190,
                        "fbtrace_id": "AbCdEf",
                    }
                },
            )
        with self.lock:
            n = next(self.ids)
        return 200, {}, {"recipient_id": request.body["recipient"]["id"], "message_id": f"m_{n}"}


def start(server: ChannelServer) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self):
            parts = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            seen = Seen(
                method=self.command,
                path=parts.path,
                query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            status, headers, payload = server.answer(seen)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET = _handle

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd
