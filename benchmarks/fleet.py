"""What the fleet store costs: a 16-image batch at L = 2 s with and without a shared Redis (local, and
behind a proxy that adds a delay each way, as a Redis across a network would), and a cache hit with and
without it. Prints a table and writes benchmarks/results/fleet.json.

Run: `.venv/bin/python benchmarks/fleet.py` (about 3 minutes; needs the test extra's redis-server).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import queue
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from redis_support import RedisServer, free_port, redis_server_binary  # noqa: E402
from run import ExternalEmulator, client_for, photo  # noqa: E402

from runflow_api.fleet import SharedStore  # noqa: E402

LATENCY_S = 2.0
BATCH = 16
ROUNDS = 3
PROXY_DELAYS_S = (0.0005, 0.002)  # each way: 1 ms per round trip (another host on the LAN), 4 ms (another zone)


class DelayProxy:
    """A TCP relay that delivers every chunk `delay` seconds after it arrived: latency, as a network adds
    it, without capping the bandwidth (sleeping before each send would serialise the delays)."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.port, self.target_port, self.delay = free_port(), target_port, delay

    def start(self) -> multiprocessing.Process:
        """In a process of its own: relaying megabytes of results in the benchmark's process would charge
        the proxy's CPU and GIL time to the client's figures."""
        process = multiprocessing.Process(target=self._accept, daemon=True)
        process.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return process
            time.sleep(0.02)
        raise RuntimeError("the delaying proxy did not start")

    def _accept(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        while True:
            client, _ = self._listener.accept()
            with contextlib.suppress(OSError):  # the start-up probe connects and leaves at once
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for source, sink in ((client, upstream), (upstream, client)):
                line: queue.Queue[tuple[float, bytes]] = queue.Queue()
                threading.Thread(target=self._read, args=(source, line), daemon=True).start()
                threading.Thread(target=self._deliver, args=(line, sink), daemon=True).start()

    def _read(self, source: socket.socket, line: queue.Queue[tuple[float, bytes]]) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(1 << 16):
                line.put((time.monotonic() + self.delay, chunk))
        line.put((0.0, b""))

    def _deliver(self, line: queue.Queue[tuple[float, bytes]], sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                due, chunk = line.get()
                if not chunk:
                    break
                time.sleep(max(0.0, due - time.monotonic()))
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)


def batch_seconds(base_url_emu: Any, tmp: Path, name: str, store_url: str | None, seed: int) -> float:
    photos = [photo(2048, seed * 100 + n) for n in range(BATCH)]
    options: dict[str, Any] = {"memory_cache": False, "max_concurrency": BATCH}
    if store_url:
        options["shared_store"] = SharedStore(store_url, prefix=f"bench{seed}{name}")
    client = client_for(base_url_emu, tmp, f"{name}{seed}", **options)
    client.isolate(photo(512, 999_000 + seed), resolution="1K")  # warm the connection pools
    started = time.perf_counter()
    outcomes = client.isolate_many(photos)
    elapsed = time.perf_counter() - started
    assert all(hasattr(o, "image") for o in outcomes), outcomes
    client.close()
    return elapsed


def hit_ms(emu: Any, tmp: Path, store_url: str | None, *, shared: bool) -> float:
    """Median time of a cache hit: local (with or without a store), or from the store on an empty disk."""
    image = photo(2048, 424242)
    options: dict[str, Any] = {"memory_cache": False}
    if store_url:
        options["shared_store"] = SharedStore(store_url, prefix="benchhit")
    producer = client_for(emu, tmp, f"hit-producer-{bool(store_url)}", **options)
    producer.isolate(image)
    times = []
    for attempt in range(7):
        reader = client_for(emu, tmp, f"hit-{bool(store_url)}-{shared}-{attempt}", **options) if shared else producer
        started = time.perf_counter()
        result = reader.isolate(image)
        times.append((time.perf_counter() - started) * 1000)
        assert result.cached and result.shared_hit == shared
    return statistics.median(times)


def main() -> None:
    binary = redis_server_binary()
    if binary is None:
        raise SystemExit("No redis-server: run ./run.sh test once (it installs the test extra).")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder, ExternalEmulator(LATENCY_S) as emu:
        tmp = Path(folder)
        server = RedisServer(binary, tmp)
        server.start()
        setups: dict[str, str | None] = {"no shared store": None, "Redis on this machine": server.url}
        proxies = []
        for delay in PROXY_DELAYS_S:
            proxy = DelayProxy(server.port, delay)
            proxies.append(proxy.start())
            setups[f"Redis {delay * 2000:g} ms round trip away"] = f"redis://127.0.0.1:{proxy.port}/0"
        figures: dict[str, list[float]] = {label: [] for label in setups}
        for seed in range(ROUNDS):  # interleaved, so drift in the machine's load hits every set-up alike
            for number, (label, url) in enumerate(setups.items()):
                figures[label].append(batch_seconds(emu, tmp, f"s{number}-", url, seed))
        base = statistics.median(figures["no shared store"])
        for label in setups:
            median = statistics.median(figures[label])
            rows.append({"measure": f"16 x 2K batch, L = {LATENCY_S:.0f} s, {label}", "seconds": round(median, 3),
                         "rounds": [round(x, 3) for x in figures[label]],
                         "overhead_pct": round((median - base) / base * 100, 1)})
        for process in proxies:
            process.terminate()
        rows.append({"measure": "cache hit, local disk, no store (ms)",
                     "ms": round(hit_ms(emu, tmp, None, shared=False), 1)})
        rows.append({"measure": "cache hit, local disk, with store (ms)",
                     "ms": round(hit_ms(emu, tmp, server.url, shared=False), 1)})
        rows.append({"measure": "shared hit from Redis, empty disk (ms)",
                     "ms": round(hit_ms(emu, tmp, server.url, shared=True), 1)})
        server.kill()
    for row in rows:
        print(json.dumps(row))
    out = Path(__file__).resolve().parent / "results" / "fleet.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"when": datetime.now(timezone.utc).isoformat(timespec="minutes"), "rows": rows},
                              indent=2))


if __name__ == "__main__":
    main()
