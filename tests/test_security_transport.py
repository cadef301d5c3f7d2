"""Security review, issue 14, the transport's part: which URLs are fetched, how long and how much a body
may take, and where the key can surface (error texts, logs, frame locals, presigned requests).

Every request goes through the real `Transport` and `requests` to real HTTP(S) servers on 127.0.0.1. URLs
that point elsewhere are only ever handed to the policy, which must refuse them before connecting; as a
safety net, the tests that could follow such a URL mount `_LoopbackOnlyAdapter`, which records every
request and never connects anywhere but this machine.
"""

from __future__ import annotations

import contextlib
import gzip
import inspect
import io
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import trustme
from PIL import Image
from requests.adapters import HTTPAdapter
from support import EMULATOR_KEY, FAST_RETRY

import runflow_api
from runflow_api import (
    APIError,
    AuthenticationFailed,
    InputRejected,
    NetworkError,
    RunflowCancelled,
    RunflowError,
    RunflowTimeout,
    ServiceUnavailable,
    Timeouts,
)
from runflow_api.service.address import resolve_base_url
from runflow_api.service.http import Transport
from runflow_api.service.runs import Run
from runflow_api.service.url_policy import external_url_refusal
from runflow_api.settings.redact import redact

PACKAGE_DIR = Path(runflow_api.__file__).resolve().parent
REAL_SERVICE = "https://api.runflow.io"
Respond = Callable[[BaseHTTPRequestHandler], None]


# -- a scriptable loopback server --------------------------------------------------------------------


class LoopbackServer:
    """A real HTTP(S) server on 127.0.0.1 whose answers a test scripts; it records every request."""

    def __init__(self, respond: Respond, *, ca: trustme.CA | None = None) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.requests.append((self.command, self.path, dict(self.headers)))
                # The client hanging up early is what several tests check.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    respond(self)

            do_GET = do_PUT = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        scheme = "http"
        if ca is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1").configure_cert(context)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
            scheme = "https"
        self.base_url = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.requests]

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[..., LoopbackServer]]:
    servers: list[LoopbackServer] = []

    def start(respond: Respond, *, ca: trustme.CA | None = None) -> LoopbackServer:
        servers.append(LoopbackServer(respond, ca=ca))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def answer(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"", **headers: str) -> None:
    handler.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **headers}.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def answer_json(handler: BaseHTTPRequestHandler, status: int, body: object) -> None:
    answer(handler, status, json.dumps(body).encode(), Content_Type="application/json")


def trickle(handler: BaseHTTPRequestHandler, *, for_s: float = 4.0) -> None:
    """Promise 10 kB of image, then send one byte every 0.1 s and hang up after `for_s` seconds."""
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.send_header("Content-Length", "10000")
    handler.end_headers()
    end = time.monotonic() + for_s
    while time.monotonic() < end:
        handler.wfile.write(b"\x89")
        time.sleep(0.1)


class _LoopbackOnlyAdapter(HTTPAdapter):
    """A real adapter that records every request and refuses, without connecting, any that is not for
    127.0.0.1: however the client misbehaves, these tests send nothing off this machine."""

    def __init__(self) -> None:
        super().__init__(max_retries=0)
        self.urls: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.urls.append(str(request.url))
        if urlsplit(str(request.url)).hostname != "127.0.0.1":
            raise requests.ConnectionError(f"test guard: refused to connect to {request.url}")
        return super().send(request, **kwargs)


def guarded(transport: Transport) -> _LoopbackOnlyAdapter:
    guard = _LoopbackOnlyAdapter()
    transport.session.mount("http://", guard)
    transport.session.mount("https://", guard)
    return guard


@pytest.fixture
def tls(tmp_path: Path) -> tuple[trustme.CA, str]:
    """A private CA for loopback TLS servers, and the path of its certificate for `verify=`."""
    ca = trustme.CA()
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, str(path)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- 2. URLs handed out by the service -------------------------------------------------------------------

HOSTILE_FOR_REAL_SERVICE = [
    "http://127.0.0.1/internal",
    "http://10.0.0.5/x",
    "https://10.0.0.5/x",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/x",
    "https://[::ffff:127.0.0.1]/x",
    "https://192.168.1.1/x",
    "https://172.16.0.1/x",
    "https://0.0.0.0/x",
    "https://localhost/x",
    "https://files.localhost./x",
    "https://127.1/x",
    "https://2130706433/x",
    "http://example.com/x",
    "ftp://example.com/x",
    "https://example.com:99999/x",
]


@pytest.mark.parametrize("url", HOSTILE_FOR_REAL_SERVICE)
def test_real_service_urls_must_be_https_to_public_hosts(url):
    transport = Transport(REAL_SERVICE, EMULATOR_KEY)
    with pytest.raises(InputRejected, match="refusing") as caught:
        transport.check_external_url(url, what="Downloading the result")
    assert "Nothing was sent" in str(caught.value)


@pytest.mark.parametrize(
    "url", ["https://storage.runflow.io/o/1.png?sig=abc", "https://93.184.216.34/x", "https://api.runflow.io/v1/x"]
)
def test_real_service_public_https_urls_are_accepted(url):
    assert external_url_refusal(url, base_url=REAL_SERVICE) is None


def test_allow_insecure_relaxes_the_scheme_but_not_the_host_rule():
    assert external_url_refusal("http://storage.example.com/x", base_url=REAL_SERVICE, allow_insecure=True) is None
    assert external_url_refusal("http://127.0.0.1/x", base_url=REAL_SERVICE, allow_insecure=True)
    assert external_url_refusal("http://169.254.169.254/x", base_url=REAL_SERVICE, allow_insecure=True)


@pytest.mark.parametrize("url", ["http://10.0.0.5/x", "https://example.com/x", "http://169.254.169.254/x"])
def test_emulator_urls_must_stay_on_this_machine(url):
    transport = Transport("http://127.0.0.1:8765", EMULATOR_KEY)
    with pytest.raises(InputRejected, match="only hands out URLs on this machine"):
        transport.check_external_url(url, what="Uploading the image")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/f", "https://localhost:9/f", "http://[::1]:9/f"])
def test_emulator_loopback_urls_are_accepted_over_http_or_https(url):
    assert external_url_refusal(url, base_url="http://127.0.0.1:8765") is None


def test_download_redirect_to_an_internal_address_is_refused_before_connecting(serve, tls):
    ca, ca_path = tls
    server = serve(lambda h: answer(h, 302, Location="http://10.255.255.1/x"), ca=ca)
    transport = Transport(server.base_url, EMULATOR_KEY, verify=ca_path, retry=FAST_RETRY)
    guard = guarded(transport)
    with pytest.raises(InputRejected, match="refusing the URL 'http://10.255.255.1/x'"):
        transport.download(f"{server.base_url}/files/out", max_bytes=1000, what="Downloading the result")
    assert guard.urls == [f"{server.base_url}/files/out"], "the redirect target must never be requested"


def test_download_follows_a_redirect_the_policy_allows(serve):
    def respond(handler: BaseHTTPRequestHandler) -> None:
        if handler.path == "/files/moved":
            answer(handler, 307, Location="/files/here")
        else:
            answer(handler, 200, b"PNGDATA", Content_Type="image/png")

    server = serve(respond)
    transport = Transport(server.base_url, EMULATOR_KEY, retry=FAST_RETRY)
    data = transport.download(f"{server.base_url}/files/moved", max_bytes=1000, what="Downloading the result")
    assert data == b"PNGDATA" and server.paths() == ["/files/moved", "/files/here"]


def test_upload_redirect_is_not_followed(serve):
    server = serve(lambda h: answer(h, 307, Location="/elsewhere"))
    transport = Transport(server.base_url, EMULATOR_KEY, retry=FAST_RETRY)
    with pytest.raises(APIError, match="307"):
        transport.put_bytes(f"{server.base_url}/upload/1?sig=x", b"image bytes", "image/png")
    assert server.paths() == ["/upload/1?sig=x"], "the image must not be re-sent to the redirect target"


def test_api_redirect_is_not_followed(serve):
    server = serve(lambda h: answer(h, 302, Location="/v1/somewhere-else"))
    transport = Transport(server.base_url, EMULATOR_KEY, retry=FAST_RETRY)
    with pytest.raises(APIError, match="Redirects are not followed"):
        transport.api("GET", "/v1/health", what="Checking the service")
    assert server.paths() == ["/v1/health"]


# -- 3. an overall deadline for downloads ----------------------------------------------------------------


def test_trickling_download_stops_at_the_overall_deadline(serve):
    server = serve(trickle)
    timeouts = Timeouts(body_total_min=0.5, body_min_bytes_per_s=100_000)  # 0.5 s + 10 kB at 100 kB/s
    transport = Transport(server.base_url, EMULATOR_KEY, timeouts=timeouts, retry=FAST_RETRY)
    started = time.monotonic()
    with pytest.raises(RunflowTimeout, match=r"Downloading the result took longer than its overall limit of 0\.6 s"):
        transport.download(f"{server.base_url}/files/slow", max_bytes=10_000, what="Downloading the result")
    assert time.monotonic() - started < 2.0, "the server would have kept the download going for 4 s"


def test_cancel_is_honoured_while_a_download_trickles(serve):
    server = serve(trickle)
    transport = Transport(server.base_url, EMULATOR_KEY, retry=FAST_RETRY)
    started = time.monotonic()
    cancel_at = started + 0.5
    with pytest.raises(RunflowCancelled):
        transport.download(
            f"{server.base_url}/files/slow",
            max_bytes=10_000,
            what="Downloading the result",
            should_cancel=lambda: time.monotonic() > cancel_at,
        )
    assert time.monotonic() - started < 1.5


def test_download_deadline_scales_with_the_size_cap():
    timeouts = Timeouts()
    assert timeouts.for_body(0) == 120.0
    assert timeouts.for_body(256 * 1024 * 1024) == 120.0 + 1024.0


# -- 5. service text that repeats the key --------------------------------------------------------------


def test_key_echoed_by_the_service_is_redacted_from_errors_and_logs(serve, caplog):
    attempts: list[str] = []

    def respond(handler: BaseHTTPRequestHandler) -> None:
        attempts.append(handler.path)
        status = 503 if len(attempts) == 1 else 401
        key = handler.headers.get("Authorization", "").removeprefix("Bearer ")
        answer_json(handler, status, {
            "code": "UNAUTHORIZED",
            "message": f"Invalid API key {key}",
            "errors": [{"loc": ["header", "authorization"], "msg": f"got {handler.headers.get('Authorization')}"}],
        })

    server = serve(respond)
    transport = Transport(server.base_url, EMULATOR_KEY, retry=FAST_RETRY)
    caplog.set_level(logging.INFO, logger="runflow_api")
    with pytest.raises(AuthenticationFailed) as caught:
        transport.api("GET", "/v1/auth/me", what="Checking the key")
    assert server.requests[0][2]["Authorization"] == f"Bearer {EMULATOR_KEY}", "the key must still be sent"
    shown = [str(caught.value), repr(caught.value), repr(vars(caught.value))]
    shown += [record.getMessage() for record in caplog.records]
    assert any("retrying" in line for line in shown), "the 503 must have been retried and logged"
    assert not [line for line in shown if "testsuite_0001" in line]
    assert "Invalid API key [redacted]" in str(caught.value)



def test_any_key_shaped_token_is_redacted_not_only_the_callers_key():
    other_key = EMULATOR_KEY.replace("0001", "0002")  # e.g. a revoked key the service still quotes
    shown = redact(f"key {other_key} was revoked; yours is rf_live_…0001", [EMULATOR_KEY])
    assert other_key not in shown and "testsuite" not in shown
    assert shown.endswith("yours is rf_live_…0001"), "the masked form stays readable"

# -- 7. a password in RUNFLOW_API_BASE -----------------------------------------------------------------


@pytest.mark.parametrize("port", [closed_port(), 99999], ids=["closed-port", "unparsable-port"])
def test_password_in_the_base_url_never_reaches_network_errors(port, caplog):
    transport = Transport(f"http://user:hunter2pass@127.0.0.1:{port}", EMULATOR_KEY, retry=FAST_RETRY)
    caplog.set_level(logging.INFO, logger="runflow_api")
    with pytest.raises(NetworkError) as caught:
        transport.api("GET", "/v1/health", what="Checking the service")
    shown = [str(caught.value), repr(transport)] + [record.getMessage() for record in caplog.records]
    assert not [line for line in shown if "hunter2pass" in line]
    assert "127.0.0.1" in str(caught.value)


# -- 10. a size cap on API answers -----------------------------------------------------------------------


def _five_megabytes_of_json(handler: BaseHTTPRequestHandler) -> None:
    """A valid JSON answer of 5 MiB, generated as it is sent, with no Content-Length to refuse it early."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.end_headers()
    handler.wfile.write(b'{"pad": "')
    for _ in range(80):
        handler.wfile.write(b"x" * 65536)
    handler.wfile.write(b'"}')


def test_oversized_api_answer_is_refused_while_streaming(serve):
    server = serve(_five_megabytes_of_json)
    transport = Transport(server.base_url, EMULATOR_KEY, retry=FAST_RETRY)
    with pytest.raises(ServiceUnavailable, match="larger than the 4194304-byte limit for API answers"):
        transport.api("GET", "/v1/runs/0190aaaa-0000-7000-8000-000000000000", what="Checking the run")


def test_declared_oversized_api_answer_is_refused_unread(serve):
    server = serve(lambda h: answer_json(h, 200, {"pad": "x" * 5000}))
    transport = Transport(server.base_url, EMULATOR_KEY, retry=FAST_RETRY, max_json_bytes=1000)
    with pytest.raises(ServiceUnavailable, match="Checking the run: .* 1000-byte limit"):
        transport.api("GET", "/v1/runs/x", what="Checking the run")


def test_oversized_error_body_still_gives_the_typed_error(serve):
    server = serve(lambda h: answer_json(h, 404, {"code": "RUN_NOT_FOUND", "message": "x" * 5000}))
    transport = Transport(server.base_url, EMULATOR_KEY, retry=FAST_RETRY, max_json_bytes=1000)
    with pytest.raises(runflow_api.NotFound, match="Runflow answered 404") as caught:
        transport.api("GET", "/v1/runs/x", what="Checking the run")
    assert "xxxx" not in str(caught.value)


def test_gzip_encoded_answers_are_decoded_and_capped_by_their_decoded_size(serve):
    """APIs behind CDNs compress: the capped reader must decode, and count what it keeps, so a small
    compressed body that inflates past the cap (a compression bomb) is refused all the same."""
    run = gzip.compress(json.dumps({"id": "run_1", "status": "queued"}).encode())
    server = serve(lambda h: answer(h, 200, run, Content_Type="application/json", Content_Encoding="gzip"))
    transport = Transport(server.base_url, EMULATOR_KEY, retry=FAST_RETRY)
    assert transport.api("GET", "/v1/runs/run_1", what="Checking the run")["id"] == "run_1"
    bomb = gzip.compress(b" " * (8 * 1024 * 1024))
    bombing = serve(lambda h: answer(h, 200, bomb, Content_Type="application/json", Content_Encoding="gzip"))
    with pytest.raises(ServiceUnavailable, match="4194304-byte limit"):
        Transport(bombing.base_url, EMULATOR_KEY, retry=FAST_RETRY).api("GET", "/v1/runs/x", what="Checking")
    png = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(png, format="PNG")
    image = serve(lambda h: answer(h, 200, gzip.compress(png.getvalue()), Content_Type="image/png",
                                   Content_Encoding="gzip"))
    data = Transport(image.base_url, EMULATOR_KEY).download(image.base_url + "/o.png", max_bytes=1 << 20, what="x")
    assert data == png.getvalue()


# -- 11. the key in frame locals, and presigned requests without it ----------------------------------


def _locals_holding(frames: Iterator[FrameType], secret: str) -> list[str]:
    """`function:variable` for each local of a runflow_api frame whose repr shows `secret`, as a crash
    reporter or debugger printing locals would. requests' and urllib3's own frames necessarily hold the
    prepared request; what they print of it (`<PreparedRequest [GET]>`) shows no header."""
    found = []
    for frame in frames:
        if not Path(frame.f_code.co_filename).resolve().is_relative_to(PACKAGE_DIR):
            continue
        for name, value in frame.f_locals.items():
            if secret in repr(value):
                found.append(f"{frame.f_code.co_name}:{name}")
    return found


def _outer_frames(frame: FrameType | None) -> Iterator[FrameType]:
    while frame is not None:
        yield frame
        frame = frame.f_back


def _traceback_frames(exc: BaseException) -> Iterator[FrameType]:
    tb = exc.__traceback__
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


class _FrameSpyAdapter(HTTPAdapter):
    """A real adapter that, as each request leaves, reads the locals of every runflow_api frame above it."""

    def __init__(self, secret: str) -> None:
        super().__init__(max_retries=0)
        self.secret = secret
        self.sent = 0
        self.leaks: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent += 1
        self.leaks += _locals_holding(_outer_frames(inspect.currentframe()), self.secret)
        return super().send(request, **kwargs)


def test_key_is_in_no_local_variable_on_the_request_path(serve):
    server = serve(lambda h: answer_json(h, 200, {"ok": True}))
    transport = Transport(server.base_url, EMULATOR_KEY, retry=FAST_RETRY)
    spy = _FrameSpyAdapter(EMULATOR_KEY)
    transport.session.mount("http://", spy)
    assert transport.api("POST", "/v1/health", json={"a": 1}, what="Checking", idempotency_key="k-1") == {"ok": True}
    assert server.requests[0][2]["Authorization"] == f"Bearer {EMULATOR_KEY}"
    assert spy.sent == 1 and spy.leaks == []
    assert EMULATOR_KEY not in repr(transport._auth) and EMULATOR_KEY not in repr(transport)


def test_key_is_in_no_local_variable_of_a_failed_call(serve):
    server = serve(lambda h: answer_json(h, 401, {"code": "UNAUTHORIZED", "message": "bad key"}))
    transport = Transport(server.base_url, EMULATOR_KEY, retry=FAST_RETRY)
    with pytest.raises(RunflowError) as caught:
        transport.api("GET", "/v1/auth/me", what="Checking the key")
    assert _locals_holding(_traceback_frames(caught.value), EMULATOR_KEY) == []


def test_presigned_upload_and_download_carry_no_authorization(serve):
    def respond(handler: BaseHTTPRequestHandler) -> None:
        if handler.command == "PUT":
            answer(handler, 200)
        else:
            answer(handler, 200, b"PNGDATA", Content_Type="image/png")

    server = serve(respond)
    transport = Transport(server.base_url, EMULATOR_KEY, retry=FAST_RETRY)
    transport.put_bytes(f"{server.base_url}/upload/1?sig=x", b"image", "image/png")
    assert transport.download(f"{server.base_url}/files/1?sig=y", max_bytes=100, what="Downloading") == b"PNGDATA"
    assert [method for method, _, _ in server.requests] == ["PUT", "GET"]
    assert all("Authorization" not in headers for _, _, headers in server.requests)



def test_failure_text_from_a_run_and_bad_base_urls_never_repeat_secrets():
    """A failed run's fields come from the service; a base URL comes from the user's environment."""
    secret = "rf_live_" + "S3CR3T" * 4
    run = Run.from_json(
        {"id": "run_1", "status": "failed", "failure_message": f"Bearer {secret} was refused",
         "failure_code": f"https://user:pw0rd@x.example/{secret}"},
        what="Reading the run",
    )
    assert secret not in str(run.failure()) and "pw0rd" not in str(run.failure())
    with pytest.raises(InputRejected) as bad_base:
        resolve_base_url("ftp://admin:hunter2base@files.example.com")
    assert "hunter2base" not in str(bad_base.value)
