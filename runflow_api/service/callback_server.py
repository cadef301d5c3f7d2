"""A callback receiver for processes that are not ComfyUI: the CLI's `--callback-listen HOST:PORT`.

A small threaded HTTP server (standard library only) that answers `POST /runflow/callback` exactly as
ComfyUI's route does (`callbacks.receive`) and nothing else, for as long as the `with` block runs. While
it runs, this process counts as receiving callbacks, so clients created in it may ask for them.

It faces the internet, so a peer cannot hold it: each request must arrive whole (request line, headers
and a Content-Length or chunked body) within `READ_DEADLINE_S`, or one watchdog thread shuts its socket;
at most `MAX_CONNECTIONS` are served at once, and a new one beyond that takes the place of the one that
has waited longest for its request. A peer that hangs up is not worth a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from ..errors import InputRejected
from . import callbacks
from .wakeups import shared_wakeups

log = logging.getLogger("runflow_api")

READ_DEADLINE_S = 10.0  # to receive one whole request, from the wait for its first line to its body's end
MAX_CONNECTIONS = 64
_WATCH_EVERY_S = 0.25
_FREED_WITHIN_S = 1.0  # how long a cut connection's thread may take to give its place back
_MAX_CHUNK_LINE = 1024
_DECIMAL = re.compile(r"[0-9]+")
_HEXADECIMAL = re.compile(rb"[0-9A-Fa-f]+")


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[v6]:PORT`) as (host, port); InputRejected with an example otherwise."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InputRejected(f"--callback-listen {text!r} is not HOST:PORT (e.g. 0.0.0.0:8189).")
    return host, int(port)


class _BadRequest(Exception):
    """The request's framing is broken (a Content-Length or chunk size that is not a number)."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = READ_DEADLINE_S  # each socket read; the watchdog bounds the whole request

    def log_message(self, format: str, *args: Any) -> None:  # request lines would flood a catalogue run
        pass

    def handle_one_request(self) -> None:
        self.server.deadlines.arm(self.connection)
        try:
            super().handle_one_request()
        finally:
            self.server.deadlines.disarm(self.connection)

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != callbacks.CALLBACK_PATH:
            self.close_connection = True  # its body, if any, is left unread
            self._answer(callbacks.Answer(404, {"error": f"Only POST {callbacks.CALLBACK_PATH} is served here."}))
            return
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True
            self._answer(callbacks.Answer(400, {"error": str(exc)}))
            return
        self.server.deadlines.disarm(self.connection)
        if body is None:
            self.close_connection = True  # the unread rest makes the connection unusable
            self._answer(callbacks.too_large())
            return
        self._answer(callbacks.receive(body, self.headers.get(callbacks.SIGNATURE_HEADER), self.server.secrets))

    def do_GET(self) -> None:
        self._answer(callbacks.Answer(405, {"error": f"Only POST {callbacks.CALLBACK_PATH} is served here."}))

    def _read_body(self) -> bytes | None:
        """The raw body, sent with a Content-Length or chunked (b"" with neither, as aiohttp reads it);
        None when it is longer than MAX_BODY_BYTES, read no further than that."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not _DECIMAL.fullmatch(length.strip()):
            raise _BadRequest("The Content-Length is not a number.")
        if int(length) > callbacks.MAX_BODY_BYTES:
            return None
        return self.rfile.read(int(length))

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            size_field = self.rfile.readline(_MAX_CHUNK_LINE).split(b";", 1)[0].strip()
            if not _HEXADECIMAL.fullmatch(size_field):
                raise _BadRequest("A chunk size is not a hexadecimal number.")
            length = int(size_field, 16)
            if length == 0:
                while self.rfile.readline(_MAX_CHUNK_LINE).strip():  # trailers, up to the blank line
                    pass
                return b"".join(chunks)
            size += length
            if size > callbacks.MAX_BODY_BYTES:
                return None
            chunks.append(self.rfile.read(length))
            self.rfile.readline(_MAX_CHUNK_LINE)  # the CRLF after the chunk

    def _answer(self, answer: callbacks.Answer) -> None:
        data = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


class _Deadlines:
    """When each connection's current request must have arrived; one thread shuts the late ones, which
    ends their blocked reads (a per-read timeout alone lets a peer send one byte at a time for ever)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._due: dict[socket.socket, float] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="runflow-callback-deadlines", daemon=True)

    def arm(self, connection: socket.socket) -> None:
        with self._lock:
            self._due[connection] = time.monotonic() + self.seconds

    def disarm(self, connection: socket.socket) -> None:
        with self._lock:
            self._due.pop(connection, None)

    def cut_oldest(self) -> bool:
        """Shut the connection whose request has waited longest (to make room for a new one); False when
        none is waiting for its request."""
        with self._lock:
            if not self._due:
                return False
            oldest = min(self._due, key=self._due.__getitem__)
            del self._due[oldest]
        _shut(oldest)
        return True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()

    def _watch(self) -> None:
        while not self._stopped.wait(_WATCH_EVERY_S):
            now = time.monotonic()
            with self._lock:
                late = [connection for connection, due in self._due.items() if due <= now]
                for connection in late:
                    del self._due[connection]
            for connection in late:
                _shut(connection)


def _shut(connection: socket.socket) -> None:
    """End a connection's blocked read at once; its handler thread then finishes and closes it."""
    with contextlib.suppress(OSError):  # already closed by its handler
        connection.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = MAX_CONNECTIONS  # a burst of deliveries waits in the backlog, not in SYN retries

    def __init__(self, address: tuple[str, int], secrets: tuple[str, ...], *, read_deadline_s: float,
                 max_connections: int) -> None:  # fmt: skip
        self.secrets = secrets
        self.deadlines = _Deadlines(read_deadline_s)
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve in a thread of its own, within MAX_CONNECTIONS: when all are taken, the connection that
        has waited longest for its request is cut to make room (a real delivery takes milliseconds, so
        stalled peers cannot crowd it out). A place whose connection was just cut or hung up is freed when
        its thread ends, so the new one waits briefly for it; only when none frees is it closed unanswered."""
        if not self._slots.acquire(blocking=False):
            self.deadlines.cut_oldest()
            if not self._slots.acquire(timeout=_FREED_WITHIN_S):
                self.shutdown_request(request)
                return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A peer that hangs up or stalls is routine on the internet: no traceback on stderr for it.
        Anything else is logged, as a warning with its traceback, instead of printed."""
        if isinstance(sys.exc_info()[1], OSError):
            log.debug("Callback receiver: the connection from %s ended early.", client_address[0], exc_info=True)
        else:
            log.warning("Callback receiver: a request from %s failed.", client_address[0], exc_info=True)


class CallbackReceiver:
    """Serve `POST /runflow/callback` on `host:port` (port 0 picks one; see `port`) inside a `with` block."""

    def __init__(self, host: str, port: int, secret: str, *, read_deadline_s: float = READ_DEADLINE_S,
                 max_connections: int = MAX_CONNECTIONS) -> None:  # fmt: skip
        self._server = _Server((host, port), (secret,), read_deadline_s=read_deadline_s,
                               max_connections=max_connections)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="runflow-callback-receiver", daemon=True)
        self._receiving = shared_wakeups().receiver()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> CallbackReceiver:
        self._receiving.__enter__()
        self._server.deadlines.start()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server.deadlines.stop()
        self._receiving.__exit__(kind, value, traceback)
