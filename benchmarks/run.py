"""The speed and memory figures docs/benchmarks.md quotes, measured against the emulator in cheap mode.

Cheap mode makes the emulator a pure sleep of L seconds per run (plus serving flat images of the right
size), so every figure measures the client, not the stand-in model. Prints a table and writes
benchmarks/results/latest.json. Run: `.venv/bin/python benchmarks/run.py` (about 4 minutes).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer_style  # noqa: E402

from runflow_api import RunflowClient  # noqa: E402
from runflow_api.emulator import Emulator  # noqa: E402
from runflow_api.money.recent import shared_recent_results  # noqa: E402

KEY = "rf_live_benchmark_0001"
RESULTS = Path(__file__).resolve().parent / "results"
Row = dict[str, Any]


def photo(size: int, seed: int) -> np.ndarray:
    """Photo-like content (smooth light, texture, noise, an object) so JPEG/PNG sizes are realistic."""
    rng = np.random.default_rng(seed)
    low = rng.normal(0, 1, (size // 64 + 2, size // 64 + 2, 3)).astype(np.float32)
    light = np.asarray(Image.fromarray(((low - low.min()) / np.ptp(low) * 255).astype(np.uint8)).resize(
        (size, size), Image.BICUBIC), dtype=np.float32)
    image = 150 + 0.35 * light + rng.normal(0, 6, (size, size, 3)).astype(np.float32)
    yy, xx = np.ogrid[:size, :size]
    inside = ((yy - size / 2) / (size * 0.3)) ** 2 + ((xx - size / 2) / (size * 0.22)) ** 2 <= 1
    image[inside] = image[inside] * 0.3 + np.array([160, 40, 30], np.float32) * 0.7
    return np.clip(image, 0, 255).astype(np.uint8)


class ExternalEmulator:
    """The emulator in its own process, as the real service would be: in the benchmark's process it would
    compete with the client's threads for the GIL and charge its own work to the client's figures."""

    def __init__(self, latency: float, balance: int = 100) -> None:
        argv = [sys.executable, "-m", "runflow_api.emulator", "--port", "0", "--api-key", KEY, "--cheap",
                "--latency", str(latency), "--balance", str(balance)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self._process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert self._process.stdout is not None
        self.base_url = self._process.stdout.readline().strip()

    def __enter__(self) -> ExternalEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


def client_for(emu: Emulator | ExternalEmulator, tmp: Path, name: str, **options: Any) -> RunflowClient:
    return RunflowClient(KEY, emu.base_url, cache_dir=tmp / name / "cache", data_dir=tmp / name / "data",
                         **options)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def row(name: str, value: float, unit: str, target: str, met: bool | None, note: str = "") -> Row:
    return {"name": name, "value": round(value, 3), "unit": unit, "target": target, "met": met, "note": note}


def bench_overhead(tmp: Path, latency: float) -> list[Row]:
    """Wall time minus L for one image per tier, after one warm-up run per tier (durations learned)."""
    rows = []
    with Emulator(api_key=KEY, latency=latency, cheap=True) as emu:
        client = client_for(emu, tmp, "overhead")
        for tier, size, target in (("1K", 1024, 0.120), ("2K", 2048, 0.250), ("4K", 4096, 0.800)):
            client.isolate(photo(size, 100), aspect_ratio="1:1", resolution=tier)  # warm-up
            samples = []
            for seed in range(3):
                array = photo(size, seed)
                wall, _ = timed(lambda array=array, tier=tier: client.isolate(array, aspect_ratio="1:1",
                                                                              resolution=tier))
                samples.append(wall - latency)
            value = statistics.median(samples)
            rows.append(row(f"overhead one image {tier} ({size}² in, {tier} out)", value * 1000, "ms",
                            f"<= {target * 1000:.0f} ms", value <= target))
        client.close()
    return rows


def _one_and_batch(tmp: Path, latency: float, name: str) -> tuple[float, float]:
    """Wall time of one 2K image, then of 16 at once, against the emulator in its own process."""
    arrays = [photo(2048, seed) for seed in range(200, 216)]
    with ExternalEmulator(latency) as emu:
        client = client_for(emu, tmp, name, max_concurrency=16)
        client.isolate(photo(2048, 199), resolution="2K")  # warm-up: learn the 2K duration
        single = photo(2048, 198)  # made before the clock starts, like the batch's photos
        one, _ = timed(lambda: client.isolate(single, resolution="2K"))
        batch, outcomes = timed(lambda: client.isolate_many(arrays, resolution="2K"))
        assert all(not isinstance(o, Exception) for o in outcomes)
        client.close()
    return one, batch


def bench_batch(tmp: Path, latency: float) -> tuple[list[Row], float]:
    one, batch = _one_and_batch(tmp, latency, "batch")
    ratio = batch / one
    return [
        row("one 2K image, wall", one, "s", "", None),
        row("batch of 16 2K images, wall", batch, "s", "", None),
        row("batch-16 / one image", ratio, "x", "<= 1.35x", ratio <= 1.35),
    ], batch


def bench_batch_floor(tmp: Path, latency: float) -> list[Row]:
    """What each extra image of a batch costs: (16 at once - one) / 16, median of three rounds."""
    samples = [(batch - one) / 16 for one, batch in (_one_and_batch(tmp, latency, f"floor{n}") for n in range(3))]
    value = statistics.median(samples)
    return [row(f"batch overhead per image, (16 at once - one) / 16, 2K, L = {latency:g} s", value * 1000, "ms",
                "<= 60 ms", value <= 0.060, f"rounds: {', '.join(f'{s * 1000:.0f}' for s in samples)} ms")]


def bench_peer(tmp: Path, latency: float, ours: float) -> list[Row]:
    arrays = [photo(2048, seed) for seed in range(200, 216)]
    with ExternalEmulator(latency) as emu:
        peer, _ = timed(lambda: peer_style.isolate_batch(emu.base_url, KEY, arrays, "1:1", "2K"))
    speedup = peer / ours
    return [
        row("batch of 16, peer style (serial, PNG, 2 s poll)", peer, "s", "", None),
        row("speed-up over peer style", speedup, "x", ">= 10x", speedup >= 10),
    ]


def bench_detection(tmp: Path, latency: float, runs: int) -> list[Row]:
    """Delay from the emulator marking a run succeeded to the client handing back its result, and polls
    per run. The measured runs go together (as in a batch); each is timed by its own "done" event."""
    with Emulator(api_key=KEY, latency=latency, cheap=True) as emu:
        client = client_for(emu, tmp, f"detect{latency}")
        client.isolate(photo(256, 300), resolution="1K")  # warm-up: learn the duration
        arrays = [photo(256, 301 + seed) for seed in range(runs)]
        finished: dict[str, float] = {}

        def on_progress(event: Any) -> None:
            if event.kind == "done" and event.run_id:
                finished[event.run_id] = time.monotonic()

        before = emu.stats["polls"]
        client.isolate_many(arrays, resolution="1K", on_progress=on_progress)
        polls = (emu.stats["polls"] - before) / runs
        delays = [done - emu.runs[run_id].completed_at_monotonic for run_id, done in finished.items()]
        client.close()
    median = statistics.median(delays)
    strict = latency >= 10
    return [
        row(f"detection delay, median, L = {latency:g} s", median * 1000, "ms", "<= 150 ms" if strict else "",
            median <= 0.150 if strict else None, f"max {max(delays) * 1000:.0f} ms over {runs} runs"),
        row(f"polls per run, L = {latency:g} s", polls, "polls", "<= 15" if strict else "",
            polls <= 15 if strict else None),
    ]


def _png_decoder() -> str:
    """Which decoder result PNGs go through here: libspng (the optional `fast` extra) or Pillow."""
    try:
        import pyspng  # noqa: F401
    except ImportError:
        return "Pillow"
    return "libspng (pyspng)"


def bench_cache_hit(tmp: Path) -> list[Row]:
    """A repeat in the same process (memory tier) and after a restart (disk: read, verify, decode)."""
    array = photo(2048, 400)
    with Emulator(api_key=KEY, latency=0.2, cheap=False) as emu:  # a real matte: realistic PNG to decode
        client = client_for(emu, tmp, "cache")
        client.isolate(array, resolution="2K")
        memory = [timed(lambda: client.isolate(array, resolution="2K"))[0] for _ in range(5)]

        def from_disk() -> float:
            shared_recent_results().clear()  # what a restarted ComfyUI or a new CLI run sees
            return timed(lambda: client.isolate(array, resolution="2K"))[0]

        disk = [from_disk() for _ in range(5)]
        client.close()
    in_memory, on_disk = statistics.median(memory), statistics.median(disk)
    return [
        row("cache hit, 2K, same process (memory)", in_memory * 1000, "ms", "<= 100 ms", in_memory <= 0.100),
        row("cache hit, 2K, after a restart (disk)", on_disk * 1000, "ms", "<= 100 ms", on_disk <= 0.100,
            f"range {min(disk) * 1000:.0f}-{max(disk) * 1000:.0f} ms; PNG decoder: {_png_decoder()}"),
    ]


FIRST_RUN_SCRIPT = """
import json, sys, time
sys.path.insert(0, {repo!r}); sys.path.insert(0, {bench!r})
from run import photo, KEY
from runflow_api import RunflowClient
base_url, data, seed, resolution = sys.argv[1:5]
image = photo(2048, int(seed))
with RunflowClient(KEY, base_url, data_dir=data, cache_dir=data + "/cache", memory_cache=False) as client:
    started = time.monotonic()
    result = client.isolate(image, aspect_ratio="1:1", resolution=resolution)
    returned = time.monotonic()
print(json.dumps({{"wall": returned - started, "returned": returned, "run_id": result.run_id}}))
"""


def _first_runs(emu: Emulator, data: Path, seeds: list[int], *, together: bool) -> list[dict[str, Any]]:
    """One new process per seed, each isolating one fresh 2K photo with `data` as its data directory:
    one after the other (so they do not share the two cores), or all at once (for long runs)."""
    script = textwrap.dedent(FIRST_RUN_SCRIPT.format(repo=str(REPO), bench=str(Path(__file__).resolve().parent)))

    def start(seed: int) -> subprocess.Popen[str]:
        argv = [sys.executable, "-c", script, emu.base_url, str(data), str(seed), "2K"]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    children = [start(seed) for seed in seeds] if together else []
    results = []
    for seed in seeds:
        child = children.pop(0) if together else start(seed)
        out, err = child.communicate(timeout=300)
        if child.returncode != 0:
            raise RuntimeError(f"first-run child failed: {err.strip()[-500:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def bench_first_run(tmp: Path) -> list[Row]:
    """The figure a user who queues one image per restart feels: the first run of a new process, with
    nothing learned (a new machine) and after an earlier process on the same machine ran once."""
    rows = []
    with Emulator(api_key=KEY, latency=2.0, cheap=True) as emu:
        cold = [_first_runs(emu, tmp / f"first-cold-{n}", [600 + n], together=False)[0] for n in range(3)]
        _first_runs(emu, tmp / "first-warm", [610], together=False)  # the earlier process
        warm = _first_runs(emu, tmp / "first-warm", [611, 612, 613], together=False)
    cold_over = statistics.median(r["wall"] for r in cold) - 2.0
    warm_over = statistics.median(r["wall"] for r in warm) - 2.0
    rows.append(row("first run of a new process, 2K, L = 2 s: wall - L", warm_over * 1000, "ms", "<= 200 ms",
                    warm_over <= 0.200, f"after one earlier process; {cold_over * 1000:.0f} ms with nothing learned"))
    with Emulator(api_key=KEY, latency=10.0, cheap=True) as emu:
        _first_runs(emu, tmp / "first-10s", [620], together=False)
        runs = _first_runs(emu, tmp / "first-10s", [621, 622, 623], together=True)
        fresh = _first_runs(emu, tmp / "first-10s-cold", [624, 625, 626], together=True)
        delays = [r["returned"] - emu.runs[r["run_id"]].completed_at_monotonic for r in runs]
        cold_delays = [r["returned"] - emu.runs[r["run_id"]].completed_at_monotonic for r in fresh]
    median = statistics.median(delays)
    rows.append(row("first run of a new process: detection delay, median, L = 10 s", median * 1000, "ms",
                    "<= 150 ms", median <= 0.150,
                    f"3 processes; {statistics.median(cold_delays) * 1000:.0f} ms with nothing learned"))
    return rows


NODE_MEMORY_SCRIPT = """
import json, sys, time
sys.path.insert(0, {repo!r}); sys.path.insert(0, {bench!r})
import importlib.util, torch, numpy as np
from run import photo, KEY
from runflow_api.emulator import Emulator
spec = importlib.util.spec_from_file_location("runflow_pack", {repo!r} + "/__init__.py",
                                              submodule_search_locations=[{repo!r}])
pack = importlib.util.module_from_spec(spec); sys.modules["runflow_pack"] = pack; spec.loader.exec_module(pack)
nodes = sys.modules["runflow_pack.nodes"]
with Emulator(api_key=KEY, latency=0.5, cheap=True) as emu:
    import os
    os.environ["RUNFLOW_API_BASE"] = emu.base_url
    os.environ["RUNFLOW_API_KEY"] = KEY
    base = torch.from_numpy(photo(2048, 1)).float().div(255)
    batch = torch.stack([(base + i / 1000).clamp(0, 1) for i in range(16)])
    del base
    def rss(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    open("/proc/self/clear_refs", "w").write("5")
    start = rss("VmRSS:")
    out = nodes.RunflowProductIsolation().isolate(image=batch, aspect_ratio="1:1", resolution="2K")["result"]
    peak = rss("VmHWM:")
    tensor_bytes = sum(t.element_size() * t.nelement() for t in out if hasattr(t, "nelement"))
    print(json.dumps({{"growth": peak - start, "tensor_bytes": tensor_bytes}}))
"""


def bench_node_memory(tmp: Path) -> list[Row]:
    script = NODE_MEMORY_SCRIPT.format(repo=str(REPO), bench=str(Path(__file__).resolve().parent))
    env = {**os.environ, "RUNFLOW_CACHE_DIR": str(tmp / "nodemem" / "cache"),
           "RUNFLOW_DATA_DIR": str(tmp / "nodemem" / "data")}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          env=env, timeout=300)
    if done.returncode != 0:
        return [row("node path peak RSS growth, batch 16 x 2K", float("nan"), "MB", "", False,
                    f"failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")]
    data = json.loads(done.stdout.strip().splitlines()[-1])
    growth, tensors = data["growth"], data["tensor_bytes"]
    limit = 1.3 * tensors + 150 * 2**20
    return [row("node path peak RSS growth, batch 16 x 2K", growth / 2**20, "MB",
                f"<= {limit / 2**20:.0f} MB (1.3 x {tensors / 2**20:.0f} MB tensors + 150)", growth <= limit)]


def _rss_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def bench_catalogue(tmp: Path, latency: float, count: int, concurrency: int) -> list[Row]:
    folder = tmp / "catalogue"
    folder.mkdir()
    base = photo(512, 500)
    for i in range(count):
        variant = base.copy()
        variant[i % 512, :, i % 3] ^= 0xFF  # every photo distinct, so every one is a run
        Image.fromarray(variant).save(folder / f"p{i:04d}.jpg", quality=90)
    with Emulator(api_key=KEY, latency=latency, cheap=True, balance=1000) as emu:
        env = {**os.environ, "RUNFLOW_API_BASE": emu.base_url, "RUNFLOW_API_KEY": KEY,
               "RUNFLOW_CACHE_DIR": str(tmp / "cat" / "cache"), "RUNFLOW_DATA_DIR": str(tmp / "cat" / "data"),
               "PYTHONPATH": str(REPO)}
        argv = [sys.executable, "-m", "runflow_api", "isolate", str(folder), "--out", str(tmp / "cat-out"),
                "--resolution", "1K", "--aspect-ratio", "1:1", "--concurrency", str(concurrency), "-q"]
        started = time.perf_counter()
        child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        samples: list[tuple[float, int]] = []
        while child.poll() is None:
            rss = _rss_of(child.pid)
            if rss:
                samples.append((time.perf_counter() - started, rss))
            time.sleep(0.2)
        wall = time.perf_counter() - started
        if child.returncode != 0:
            raise RuntimeError(f"catalogue run failed: {child.stderr.read() if child.stderr else ''}")
        creates = emu.stats["creates"]
    per_minute = count / wall * 60
    ideal = concurrency * 60 / latency
    early = [rss for t, rss in samples if t >= 5][:5] or [samples[0][1]]
    growth = (max(rss for _, rss in samples) - statistics.median(early)) / 2**20
    return [
        row(f"catalogue {count} x 512px via CLI, L = {latency:g} s", per_minute, "img/min",
            f">= {0.8 * ideal:.0f} (80% of {ideal:.0f})", per_minute >= 0.8 * ideal,
            f"wall {wall:.1f} s incl. start-up and planning; {creates} runs"),
        row("catalogue memory growth (peak - RSS at 5 s)", growth, "MB", "< 100 MB", growth < 100),
    ]


def _print_row(r: Row, width: int = 58) -> None:
    verdict = {True: "ok", False: "MISSED", None: ""}[r["met"]]
    print(f"{r['name']:<{width}} {r['value']:>10.3f} {r['unit']:<8} {r['target']:<44} {verdict} {r['note']}",
          flush=True)


def main() -> int:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Benchmarks {stamp} on {machine}", flush=True)
    rows: list[Row] = []

    def add(new_rows: list[Row]) -> None:
        for r in new_rows:
            _print_row(r)
        rows.extend(new_rows)

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        add(bench_overhead(tmp, latency=1.0))
        add(bench_first_run(tmp))
        batch_rows, ours = bench_batch(tmp, latency=3.0)
        add(batch_rows)
        add(bench_peer(tmp, latency=3.0, ours=ours))
        add(bench_batch_floor(tmp, latency=2.0))
        add(bench_detection(tmp, latency=2.0, runs=5))
        add(bench_detection(tmp, latency=10.0, runs=5))
        add(bench_cache_hit(tmp))
        add(bench_node_memory(tmp))
        add(bench_catalogue(tmp, latency=0.5, count=1000, concurrency=8))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps({"date": stamp, "machine": machine, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
