"""A local HTTP server standing in for Stripe's and Razorpay's APIs.

The official SDKs are pointed at it (STRIPE_API_BASE, RAZORPAY_API_BASE) and run for real:
request building, authentication, form or JSON encoding, error mapping. The server records
every request so a test can check its wire format, and answers with what a route returns —
bodies shaped like the real service's, errors included.
"""

import json
import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A route answering `(RESET, None)` makes the server drop the connection without a response.
RESET = "reset"


@dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: bytes


class Gateway:
    """`port`: 0 for any free one, or the address a setting already names. A route answering
    None drops the connection without a response (a network failure as the client sees it)."""

    def __init__(self, port: int = 0):
        self.requests: list[Request] = []
        self.routes = {}
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                gateway.requests.append(request)
                route = gateway.routes.get((self.command, self.path.split("?")[0]))
                if route is None:
                    error = {"type": "invalid_request_error", "message": "No such route"}
                    status, body = 404, {"error": error}
                else:
                    answer = route(request)
                    if answer is None:
                        self.close_connection = True
                        return
                    status, body = answer
                if status == RESET:
                    # Drop the connection without an answer (the client sees a reset).
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                raw = isinstance(body, bytes)
                payload = body if raw else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if raw else "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Request-Id", "req_local")
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = handle_one

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def route(self, method: str, path: str, answer):
        """`answer(request) -> (status, json body)` for `method path`; a `bytes` body is sent as is
        (a malformed answer), `(RESET, None)` drops the connection."""
        self.routes[(method, path)] = answer

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
