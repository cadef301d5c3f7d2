"""A callback receiver for processes that are not ComfyUI: the CLI's `--callback-listen HOST:PORT`.

A small threaded HTTP server (standard library only) that answers `POST /runflow/callback` exactly as
ComfyUI's route does (`callbacks.receive`) and nothing else, for as long as the `with` block runs. While
it runs, this process counts as receiving callbacks, so clients created in it may ask for them.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from . import callbacks
from .errors import InputRejected
from .wakeups import shared_wakeups


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[v6]:PORT`) as (host, port); InputRejected with an example otherwise."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InputRejected(f"--callback-listen {text!r} is not HOST:PORT (e.g. 0.0.0.0:8189).")
    return host, int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # request lines would flood a catalogue run
        pass

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != callbacks.CALLBACK_PATH:
            self._answer(callbacks.Answer(404, {"error": f"Only POST {callbacks.CALLBACK_PATH} is served here."}))
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            self._answer(callbacks.Answer(411, {"error": "Send a Content-Length."}))
            return
        if int(length) > callbacks.MAX_BODY_BYTES:
            self.close_connection = True  # the unread body makes the connection unusable
            self._answer(callbacks.too_large())
            return
        body = self.rfile.read(int(length))
        self._answer(callbacks.receive(body, self.headers.get(callbacks.SIGNATURE_HEADER), self.server.secrets))

    def do_GET(self) -> None:
        self._answer(callbacks.Answer(405, {"error": f"Only POST {callbacks.CALLBACK_PATH} is served here."}))

    def _answer(self, answer: callbacks.Answer) -> None:
        data = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], secrets: tuple[str, ...]) -> None:
        self.secrets = secrets
        super().__init__(address, _Handler)


class CallbackReceiver:
    """Serve `POST /runflow/callback` on `host:port` (port 0 picks one; see `port`) inside a `with` block."""

    def __init__(self, host: str, port: int, secret: str) -> None:
        self._server = _Server((host, port), (secret,))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="runflow-callback-receiver", daemon=True)
        self._receiving = shared_wakeups().receiver()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> CallbackReceiver:
        self._receiving.__enter__()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._receiving.__exit__(kind, value, traceback)
