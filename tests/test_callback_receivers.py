"""Both callback receivers on real sockets: the CLI's `CallbackReceiver` and ComfyUI's route (routes/callback.py on
a real aiohttp server). One matrix of raw requests, answered identically by both; then what the CLI's
receiver, which faces the internet on its own, does with peers that stall or hang up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from aiohttp import web
from routes_support import make_app
from support import CALLBACK_SECRET

from runflow_api.service.callback_server import CallbackReceiver
from runflow_api.service.callbacks import sign
from runflow_api.service.wakeups import shared_wakeups
from runflow_api.settings import config

BODY = json.dumps({"event": "run.completed", "run_id": "run-matrix"}).encode()
BIG = b"x" * (1024 * 1024 + 1)


def request(body: bytes = b"", *, signature: str | None = None, headers: str = "", framing: str = "length") -> bytes:
    """A raw POST /runflow/callback; `framing` is "length", "chunked" (body in two chunks) or "none"."""
    head = "POST /runflow/callback HTTP/1.1\r\nHost: receiver\r\nConnection: close\r\n" + headers
    if signature is not None:
        head += f"Runflow-Signature: {signature}\r\n"
    if framing == "length":
        return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
    if framing == "chunked":
        half = len(body) // 2
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:]) if part)
        return f"{head}Transfer-Encoding: chunked\r\n\r\n".encode() + chunks + b"0\r\n\r\n"
    return f"{head}\r\n".encode()


MATRIX = {
    "signed": (request(BODY, signature=sign(CALLBACK_SECRET, BODY)), 200),
    "signed, chunked": (request(BODY, signature=sign(CALLBACK_SECRET, BODY), framing="chunked"), 200),
    "unsigned": (request(BODY), 401),
    "signed by another secret": (request(BODY, signature=sign("whsec_another_secret_000", BODY)), 401),
    "unsigned, chunked": (request(BODY, framing="chunked"), 401),
    "signed, not a callback": (request(b"[1]", signature=sign(CALLBACK_SECRET, b"[1]")), 400),
    "signed, no body at all": (request(signature=sign(CALLBACK_SECRET, b""), framing="none"), 400),
    "too large, declared": (request(BIG, signature="0" * 64), 413),
    "too large, chunked": (request(BIG, signature="0" * 64, framing="chunked"), 413),
    "a negative chunk size": (request(signature="0" * 64, framing="none").replace(
        b"\r\n\r\n", b"\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n0\r\n\r\n"), 400),
    "a Content-Length that is not a number": (request(signature="0" * 64, framing="none").replace(
        b"\r\n\r\n", b"\r\nContent-Length: 1x\r\n\r\n"), 400),
}


def exchange(port: int, raw: bytes) -> int:
    """Send one raw request and return the answer's status code."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        with contextlib.suppress(OSError):  # a receiver may answer 413 and close before the whole body is sent
            conn.sendall(raw)
        answer = b""
        while b"\r\n" not in answer:
            piece = conn.recv(4096)
            if not piece:
                break
            answer += piece
    return int(answer.split(b" ", 2)[1])


@contextmanager
def comfyui_route() -> Iterator[int]:
    """routes/callback.py's route on a real aiohttp server in a thread; yields its port."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(make_app())
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(runner.cleanup())
        loop.close()


@pytest.fixture
def receivers(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    monkeypatch.setenv(config.CALLBACK_SECRET_ENV, CALLBACK_SECRET)
    with CallbackReceiver("127.0.0.1", 0, CALLBACK_SECRET) as cli, comfyui_route() as route:
        yield {"cli": cli.port, "comfyui": route}


def test_both_receivers_answer_one_matrix_of_requests_identically(receivers):
    answers = {name: {case: exchange(port, raw) for case, (raw, _) in MATRIX.items()}
               for name, port in receivers.items()}
    expected = {case: status for case, (_, status) in MATRIX.items()}
    assert answers == {"cli": expected, "comfyui": expected}


def test_a_chunked_callback_wakes_its_run_on_either_receiver(receivers):
    for port in receivers.values():
        with shared_wakeups().register("run-matrix") as wakeup:
            assert exchange(port, MATRIX["signed, chunked"][0]) == 200
            assert wakeup.wait(5.0)


# -- the CLI receiver on the internet ---------------------------------------------------------------------

STALLS = {
    "partial headers": b"POST /runflow/callback HTTP/1.1\r\nHost: x\r\nRunflow-Sig",
    "a promised body that never comes": b"POST /runflow/callback HTTP/1.1\r\nContent-Length: 500\r\n\r\n{\"run_",
    "a chunk that never ends": b"POST /runflow/callback HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nab",
    "a silent socket": b"",
}


def closed_by_peer(conn: socket.socket, limit: float) -> bool:
    """True when the receiver closes `conn` within `limit` seconds."""
    conn.settimeout(limit)
    try:
        while conn.recv(4096):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


def test_stalled_connections_are_cut_at_the_deadline_and_capped():
    """A peer cannot hold the receiver: at most max_connections threads, each for at most the deadline,
    and a real callback gets through once the stalls are cut."""
    baseline = threading.active_count()
    with CallbackReceiver("127.0.0.1", 0, CALLBACK_SECRET, read_deadline_s=1.0, max_connections=8) as receiver:
        stalled = []
        for index in range(40):
            conn = socket.create_connection(("127.0.0.1", receiver.port), timeout=5)
            conn.sendall(list(STALLS.values())[index % len(STALLS)])
            stalled.append(conn)
        time.sleep(0.3)
        assert threading.active_count() <= baseline + 2 + 8, "one thread per connection, at most 8"
        # Uncut, a stall is held for as long as the receiver runs: waiting up to 10 s (the 1 s deadline plus
        # room for a loaded machine) tells the two apart without timing the cut itself.
        assert all(closed_by_peer(conn, 10.0) for conn in stalled), "every stalled connection is cut"
        for conn in stalled:
            conn.close()
        assert exchange(receiver.port, MATRIX["signed"][0]) == 200
        deadline = time.monotonic() + 5
        while threading.active_count() > baseline + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threading.active_count() <= baseline + 2, "the receiver's two threads are all that is left"


def test_a_peer_hanging_up_mid_request_prints_nothing(receivers, capfd):
    for _ in range(20):
        conn = socket.create_connection(("127.0.0.1", receivers["cli"]), timeout=5)
        conn.sendall(b"POST /runflow/callback HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"run_id\"")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset, not a FIN
        conn.close()
    assert exchange(receivers["cli"], MATRIX["signed"][0]) == 200
    time.sleep(0.3)
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and captured.err == "", captured.err[:2000]


def test_a_real_callback_gets_through_while_stalled_peers_fill_every_place():
    baseline = threading.active_count()
    with CallbackReceiver("127.0.0.1", 0, CALLBACK_SECRET, read_deadline_s=30.0, max_connections=8) as receiver:
        stalled = [socket.create_connection(("127.0.0.1", receiver.port), timeout=5) for _ in range(20)]
        for conn in stalled:
            conn.sendall(STALLS["a promised body that never comes"])
        time.sleep(0.3)
        assert threading.active_count() <= baseline + 2 + 8
        started = time.monotonic()
        with shared_wakeups().register("run-matrix") as wakeup:
            assert exchange(receiver.port, MATRIX["signed"][0]) == 200
            assert wakeup.wait(1.0)
        assert time.monotonic() - started < 3.0, "not held until the stalls' deadline"
        for conn in stalled:
            conn.close()
