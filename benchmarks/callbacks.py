"""How fast a finished run is noticed, and how many times it is read, with and without callbacks.

The issue's acceptance figure: with callbacks on (the emulator delivering, L = 10 s), completion is
detected within 100 ms of the run's end with at most 2 polls per run; with every callback dropped, the
results still arrive (by the fallback poll, within one `callback_interval`). Polling alone is measured
beside them for comparison (durations learned first, as after a first run).

"Detected" is the moment the client saw the run terminal (its `status` event), against the emulator's
own `completed_at` on the same monotonic clock; polls per run are the emulator's per-run read counts.
The emulator runs in this process (its clock is the one to compare with) in cheap mode, and delivers to
a real `CallbackReceiver` on loopback. Prints a table and writes benchmarks/results/callbacks.json.
Run: `.venv/bin/python benchmarks/callbacks.py [--latency 10] [--images 8]` (about a minute at L = 10 s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import KEY, RESULTS, photo  # noqa: E402 - the lead's shared benchmark helpers

from runflow_api import PollPolicy, RunflowClient  # noqa: E402
from runflow_api.emulator import Emulator  # noqa: E402
from runflow_api.pictures.result_types import ProgressEvent  # noqa: E402
from runflow_api.service.callback_server import CallbackReceiver  # noqa: E402
from runflow_api.service.callbacks import CallbackSettings  # noqa: E402

SECRET = "whsec_benchmark_callbacks_0001"


def scenario(name: str, *, latency: float, images: int, callbacks: bool, drop: bool = False,
             warm_up: bool = False) -> dict[str, Any]:
    """One batch of `images` runs; the delay from each run's end to the client noticing it, and its reads."""
    with tempfile.TemporaryDirectory() as tmp, Emulator(api_key=KEY, latency=latency, cheap=True,
                                                        callback_secret=SECRET) as emu, \
            CallbackReceiver("127.0.0.1", 0, SECRET) as receiver:
        emu.faults.callback_drop_rate = 1.0 if drop else 0.0
        settings = CallbackSettings(f"http://127.0.0.1:{receiver.port}", SECRET) if callbacks else False
        client = RunflowClient(KEY, emu.base_url, cache_dir=Path(tmp) / "c", data_dir=Path(tmp) / "d",
                               max_concurrency=images, callbacks=settings, poll=PollPolicy())
        if warm_up:  # polling: learn how long a run takes, as any second batch would know
            client.isolate(photo(256, 999), resolution="1K")
            emu.reset_stats()
            for run in emu.runs.values():
                run.polls = 0
        noticed: dict[str, float] = {}
        lock = threading.Lock()

        def on_progress(event: ProgressEvent) -> None:
            if event.kind == "status" and event.status == "succeeded" and event.run_id:
                with lock:
                    noticed.setdefault(event.run_id, time.monotonic())

        started = time.monotonic()
        outcomes = client.isolate_many([photo(256, seed) for seed in range(images)], resolution="1K",
                                       on_progress=on_progress)
        wall = time.monotonic() - started
        client.close()
        assert all(not isinstance(outcome, Exception) for outcome in outcomes), outcomes
        runs = [run for run_id, run in emu.runs.items() if run_id in noticed]
        delays = [1000 * (noticed[run.id] - run.completed_at_monotonic) for run in runs]
        polls = [run.polls for run in runs]
        return {
            "scenario": name, "latency_s": latency, "images": images, "wall_s": round(wall, 2),
            "delay_ms_median": round(statistics.median(delays), 1), "delay_ms_max": round(max(delays), 1),
            "polls_per_run_max": max(polls), "polls_per_run_mean": round(statistics.mean(polls), 2),
            "callbacks_delivered": emu.stats["callbacks_delivered"],
            "callbacks_dropped": emu.stats["callbacks_dropped"],
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=10.0, help="seconds each run takes (default 10)")
    parser.add_argument("--images", type=int, default=8, help="runs in the batch (default 8)")
    args = parser.parse_args()
    rows = [
        scenario("callbacks on", latency=args.latency, images=args.images, callbacks=True),
        scenario("callbacks on, every one dropped", latency=args.latency, images=args.images, callbacks=True,
                 drop=True),
        scenario("polling only (durations learned)", latency=args.latency, images=args.images, callbacks=False,
                 warm_up=True),
    ]
    print(f"{'scenario':36} {'wall s':>7} {'delay ms (median / max)':>24} {'polls/run (mean / max)':>23}")
    for row in rows:
        print(f"{row['scenario']:36} {row['wall_s']:7.2f} {row['delay_ms_median']:>11.1f} / "
              f"{row['delay_ms_max']:<10.1f} {row['polls_per_run_mean']:>11.2f} / {row['polls_per_run_max']:<8d}")
    on = rows[0]
    met = on["delay_ms_max"] <= 100 and on["polls_per_run_max"] <= 2
    print(f"Acceptance (callbacks on, L = {args.latency:g} s: detected within 100 ms, at most 2 polls per run): "
          f"{'met' if met else 'NOT met'}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "callbacks.json").write_text(json.dumps({"rows": rows, "acceptance_met": met}, indent=2) + "\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
