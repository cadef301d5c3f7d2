"""Small helpers the tests share (constants and synthetic photos); fixtures live in conftest.py."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import requests
from PIL import Image

from runflow_api import PollPolicy, RetryPolicy, RunflowClient

EMULATOR_KEY = "rf_live_testsuite_0001"
FAST_RETRY = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05, jitter=0.01)
FAST_POLL = PollPolicy(first_poll=0.02, idle_interval=0.1, dense_interval=0.02, dense_lead=0.05)


def product_photo(seed: int = 0, size: tuple[int, int] = (96, 128)) -> np.ndarray:
    """A small photo-like product shot: a shaded coloured blob on a light, slightly noisy background."""
    rng = np.random.default_rng(seed)
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width]
    background = 225 + rng.normal(0, 3, (height, width, 1))
    image = np.repeat(background, 3, axis=2)
    cy, cx = height / 2 + seed % 5, width / 2 - seed % 7
    inside = ((yy - cy) / (height * 0.3)) ** 2 + ((xx - cx) / (width * 0.25)) ** 2 <= 1
    colour = np.array([40 + (seed * 37) % 180, 60 + (seed * 53) % 150, 180 - (seed * 29) % 120], dtype=float)
    shade = 0.7 + 0.3 * (xx / width)
    image[inside] = colour * shade[inside][:, None]
    return np.clip(image, 0, 255).astype(np.uint8)



CALLBACK_SECRET = "whsec_testsuite_callback_0001"


@dataclass(frozen=True)
class Delivery:
    """One POST a CallbackSink received: its arrival on the monotonic clock, headers and raw body."""

    at: float
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class CallbackSink:
    """A real HTTP server on loopback that records every POST and answers with the next status of
    `statuses` (then 200): a stand-in for a receiver the tests can inspect, not a mock of our code."""

    def __init__(self, statuses: Sequence[int] = ()) -> None:
        self.deliveries: list[Delivery] = []
        self.statuses = list(statuses)
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink._lock:
                    sink.deliveries.append(Delivery(time.monotonic(), dict(self.headers.items()), body))
                    status = sink.statuses.pop(0) if sink.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def __enter__(self) -> CallbackSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, limit: float = 15.0) -> list[Delivery]:
        """The deliveries once there are `count` of them (or fail after `limit` seconds, which is generous)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.deliveries) >= count:
                    return list(self.deliveries)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} deliveries within {limit} s, got {len(self.deliveries)}")


def peak_overlap(runs: Sequence[Any]) -> int:
    """How many of the emulator's runs were in flight at the busiest instant: 1 for a serial batch, the
    batch's size for one started all at once. Judged from the runs' own create/complete times, so a loaded
    machine that starts the batch slowly still shows whether it ran in parallel."""
    starts = [run["created_at"] for run in runs]
    return max(sum(1 for run in runs if run["created_at"] <= start < run["completed_at"]) for start in starts)


# -- uploads, watched at the emulator ---------------------------------------------------------------------


class UploadWatch:
    """Samples an emulator's assets from a thread every 5 ms: `most` is the largest number of upload
    slots seen at once that had no bytes yet, i.e. uploads in flight together."""

    def __init__(self, emu: Any) -> None:
        self._emu = emu
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.most = 0

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            waiting = sum(1 for asset in self._emu.assets.values() if not asset["uploaded"])
            self.most = max(self.most, waiting)

    def __enter__(self) -> UploadWatch:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
                 ) -> None:
        self._stop.set()
        self._thread.join()


def hold_puts(emu: Any, seconds: float) -> None:
    emu.faults.routes = {"put"}
    emu.faults.slow = seconds


def fetched(url: str) -> bytes:
    answer = requests.get(url, timeout=10)
    answer.raise_for_status()
    return answer.content


def alpha_bounds(alpha: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the pixels with any alpha: where a rendering put the product."""
    rows, cols = np.flatnonzero((alpha > 0).any(axis=1)), np.flatnonzero((alpha > 0).any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def paid_runs_since(client: RunflowClient, start: Decimal) -> int:
    """How many $0.27 runs the account paid since its balance was `start`: paid runs counted as a user sees
    them, from an emulator in its own process."""
    balance = client.balance().amount
    assert balance is not None
    return int((start - balance) / Decimal("0.27"))


@contextlib.contextmanager
def emulator_process(balance: str = "10.00") -> Iterator[tuple[str, dict[str, str]]]:
    """The emulator in a process of its own, as a user starts it: its base URL, and the environment a CLI
    process needs to use it (the key, the address, this checkout on PYTHONPATH). A test counts paid runs
    from its balance (`paid_runs_since`), as a user would."""
    repo = Path(__file__).resolve().parents[1]
    emulator = subprocess.Popen(
        [sys.executable, "-m", "runflow_api.emulator", "--port", "0", "--latency", "0.2", "--api-key", EMULATOR_KEY,
         "--balance", balance], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=repo)
    try:
        assert emulator.stdout is not None
        base_url = emulator.stdout.readline().strip()
        yield base_url, {**os.environ, "RUNFLOW_API_BASE": base_url, "RUNFLOW_API_KEY": EMULATOR_KEY,
                         "PYTHONPATH": str(repo)}
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


def photo_folder(folder: Path, seeds: tuple[int, ...]) -> list[Path]:
    """A folder of product photos, `p<seed>.png` for each seed: a small catalogue, the same bytes each time."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        path = folder / f"p{seed}.png"
        Image.fromarray(product_photo(seed)).save(path)
        paths.append(path)
    return paths
