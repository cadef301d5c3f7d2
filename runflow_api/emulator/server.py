"""HTTP plumbing: routing, auth, fault injection, body limits, keep-alive, TLS, clean shutdown.

Benchmarks measure the client against this server, so a request costs little here: HTTP/1.1 keep-alive
with exact Content-Length (requests' pool reuses connections), Nagle off (no 40 ms delayed-ACK stalls),
bodies read in one call, no per-request logging unless verbose, and no reverse-DNS lookup at bind time.
"""

from __future__ import annotations

import contextlib
import logging
import re
import selectors
import socket
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from ..product_isolation import MAX_UPLOAD_BYTES
from .api import Api, Request
from .faults import NO_FAULT
from .views import Problem, Reply

JSON_BODY_LIMIT = 1 << 20  # API bodies are small JSON documents
IDLE_TIMEOUT_S = 120  # an idle keep-alive connection is closed after this long
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    name: str  # the name Faults.routes selects
    authenticated: bool
    max_body: int = JSON_BODY_LIMIT


ROUTES: tuple[Route, ...] = (
    Route("POST", re.compile(r"/v1/asset-uploads"), "asset_upload", True),
    Route("PUT", re.compile(r"/uploads/(?P<id>[^/]+)"), "put", False, MAX_UPLOAD_BYTES),
    Route("POST", re.compile(r"/v1/asset-uploads/(?P<id>[^/]+)/confirmations"), "confirm", True),
    Route("GET", re.compile(r"/v1/assets/(?P<id>[^/]+)"), "asset", True),
    Route("POST", re.compile(r"/v1/models/(?P<model>[^/]+/[^/]+)/runs"), "create", True),
    Route("GET", re.compile(r"/v1/runs/(?P<id>[^/]+)"), "poll", True),
    Route("GET", re.compile(r"/files/(?P<id>[^/]+)"), "download", False),
    Route("GET", re.compile(r"/v1/auth/me"), "me", True),
    Route("GET", re.compile(r"/v1/billing/balance"), "balance", True),
    Route("GET", re.compile(r"/v1/health"), "health", False),
)


def find_route(method: str, path: str) -> tuple[Route, dict[str, str]]:
    """The route and its percent-decoded path parameters; 404 for an unknown path, 405 for a wrong method."""
    allowed = []
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match is None:
            continue
        if route.method == method:
            return route, {
                key: "/".join(unquote(part) for part in value.split("/")) for key, value in match.groupdict().items()
            }
        allowed.append(route.method)
    if allowed:
        raise Problem(
            405,
            f"{method} is not allowed on {path}.",
            code="METHOD_NOT_ALLOWED",
            headers={"Allow": ", ".join(allowed)},
        )
    raise Problem(404, f"No route {path}.")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "RunflowEmulator/1.0"
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_S
    server: EmulatorHTTPServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self) -> None:
        api = self.server.api
        faults = api.faults
        api.state.count("requests")
        parts = urlsplit(self.path)
        route: Route | None = None
        try:
            route, params = find_route(self.command, parts.path)
            body = self._read_body(route.max_body)
        except Problem as problem:  # unknown route, or a body refused before it was read
            self._send(problem.reply(nested=faults.nested_errors))
            return
        if body is None:  # the client went away mid-body
            self.close_connection = True
            return
        if faults.applies_to(route.name) and faults.slow > 0:
            time.sleep(faults.slow)
        request = Request(params, parts.query, self.headers, body)
        reply = self._answer(route, request)
        if reply is None:
            self.close_connection = True  # the dropped connection: closed with no answer at all
            return
        self._send(reply)

    def _answer(self, route: Route, request: Request) -> Reply | None:
        """Auth, then faults (429 burst, injected error, drop before), the action, then a drop after it."""
        api = self.server.api
        faults = api.faults
        fault = NO_FAULT
        try:
            if route.authenticated and not api.authorized(self.headers.get("Authorization")):
                raise Problem(401, "Missing or invalid API key: send Authorization: Bearer <key>.")
            fault = faults.for_request(route.name)
            if fault.rate_limited:
                api.state.count("rate_limited")
                retry_after = faults.retry_after
                raise Problem(
                    429,
                    "Too many requests; slow down.",
                    headers={} if retry_after is None else {"Retry-After": f"{retry_after:g}"},
                )
            if fault.error_status is not None:
                api.state.count("injected_errors")
                raise Problem(fault.error_status, f"Injected {fault.error_status} error.")
            if fault.drop and not fault.drop_after:
                api.state.count("dropped")
                return None
            reply = getattr(api, route.name)(request)
        except Problem as problem:
            reply = problem.reply(nested=faults.nested_errors)
        except Exception as exc:  # a bug: answer 500 rather than hang the client, and make it visible
            log.exception("emulator route %s failed", route.name)
            reply = Problem(500, f"Emulator error: {exc}").reply(nested=faults.nested_errors)
        if fault.drop and fault.drop_after:
            api.state.count("dropped")
            return None
        return reply

    def _read_body(self, limit: int) -> bytes | None:
        """The whole body in one read; None when the client hung up before sending all of it."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise Problem(411, "Send a Content-Length; chunked bodies are not supported.", code="LENGTH_REQUIRED")
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        if not raw.strip().isdigit():
            self.close_connection = True
            raise Problem(400, "Content-Length is not a number.")
        length = int(raw)
        if length > limit:
            self.close_connection = True  # the unread body makes the connection unusable
            raise Problem(
                413,
                f"The body is {length} bytes; this route accepts at most {limit}.",
                code="PAYLOAD_TOO_LARGE",
            )
        data = self.rfile.read(length)
        return data if len(data) == length else None

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        if reply.body:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if reply.body:
            self.wfile.write(reply.body)


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP(S) server that knows its open connections, so stop() really stops."""

    daemon_threads = True
    # A batch, a fleet or a test opens dozens of connections at once: socketserver's backlog of 5 lets a
    # burst overflow the accept queue on a loaded machine (as the callback receiver found).
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], api: Api, *, ssl_context: ssl.SSLContext | None, verbose: bool
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.api = api
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._stopping = False
        self._wake_reader, self._wake_writer = socket.socketpair()
        super().__init__(address, Handler)
        if ssl_context is not None:
            # The handshake happens in the connection's own thread on first read, so a slow or
            # failing client never blocks the accept loop.
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def server_bind(self) -> None:
        """HTTPServer.server_bind does a reverse-DNS lookup (getfqdn) that can stall for seconds offline."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def serve_until_stopped(self) -> None:
        """Accept connections until stop() is called. Unlike serve_forever, which notices a shutdown only at
        its next poll (0.5 s by default), this wakes at once: tests start and stop hundreds of emulators."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in selector.select():
                    if key.fileobj is self.socket and not self._stopping:
                        self.handle_request()

    def stop(self) -> None:
        """Wake the accept loop and make it return; the caller joins its thread, then calls close()."""
        self._stopping = True
        self._wake_writer.send(b"\0")

    def close(self) -> None:
        """Close the listening socket and every open keep-alive connection, so no client keeps talking
        to a stopped emulator."""
        self.server_close()
        self._wake_reader.close()
        self._wake_writer.close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the other side
                connection.shutdown(socket.SHUT_RDWR)

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up or failing the TLS handshake are normal here; stay quiet unless verbose."""
        if self.verbose:
            super().handle_error(request, client_address)
