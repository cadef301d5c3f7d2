"""Machines that split a catalogue: the same CLI command on 1, 2 and 4 "machines" sharing one Redis.

Each machine is its own process with its own cache and data directories (another computer, as far as
the pack can tell); one real redis-server is the fleet's shared store (RUNFLOW_SHARED_STORE); the
emulator runs in a process of its own at L = 2 s and counts the creates, which is what a studio pays for.
The machines write to one shared --out folder (a network share in a studio), so each photo is written
once, by the machine that produced it. Every set-up starts from an empty Redis, an empty --out and a
fresh emulator, so nothing is cached from the last one.

The clock starts when every machine has imported Python, the pack and its Redis client, and is told to
go at once: on separate computers those start-ups run side by side, whereas here four interpreters would
share two cores and charge their imports to the fleet. The start-up is printed apart. A last set-up starts a second
machine halfway through a one-machine run, to show that it takes over part of the rest.

Each set-up runs twice: "new fleet", with nothing learned, and "durations learned", where one photo outside
the catalogue went through the same Redis first, as it has for a fleet after its first photo (machines
share learned run durations; results of the catalogue are not cached either way, and that photo's paid
run is not counted). Without a learned duration every machine polls its first runs on a coarse schedule
and sees each end up to 0.4 s late: one round in two on four machines, one in eight on one.

Prints a table and writes benchmarks/results/fleet_machines.json.
Run: `.venv/bin/python benchmarks/fleet_machines.py` (about 7 minutes; needs the test extra's redis-server).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine_load import load_window  # noqa: E402
from redis_support import RedisServer, redis_server_binary  # noqa: E402
from run import KEY, photo  # noqa: E402

LATENCY_S = 2.0
PHOTOS = 32
CONCURRENCY = 4
ROUNDS = int(os.environ.get("FLEET_ROUNDS", "3"))
# A machine: imports first (the pack, and the Redis client it loads for RUNFLOW_SHARED_STORE), says
# "ready", runs the CLI when told "go", then prints when it ended.
_MACHINE = (
    "import json, sys, time\n"
    "import redis\n"
    "from runflow_api.catalogue.cli import main\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "code = main(sys.argv[1:])\n"
    "print(json.dumps({'end': time.time(), 'code': code}), flush=True)\n"
)


def _serve_emulator(conn: Connection, latency: float) -> None:
    """The emulator's own process: answers "stats" with its counters until told "stop"."""
    from runflow_api.emulator import Emulator

    emulator = Emulator(api_key=KEY, latency=latency, cheap=True, balance="1000")
    emulator.start()
    conn.send(emulator.base_url)
    while (message := conn.recv()) != "stop":
        conn.send(dict(emulator.stats) if message == "stats" else None)
    emulator.stop()


class EmulatorProcess:
    def __init__(self, latency: float) -> None:
        self._conn, child = multiprocessing.get_context("spawn").Pipe()
        self._process = multiprocessing.get_context("spawn").Process(target=_serve_emulator, args=(child, latency))
        self._process.start()
        self.base_url: str = self._conn.recv()

    def stats(self) -> dict[str, int]:
        self._conn.send("stats")
        answer: dict[str, int] = self._conn.recv()
        return answer

    def stop(self) -> None:
        self._conn.send("stop")
        self._process.join(timeout=10)


class Machine:
    """One "machine": a process with its own cache and data folders, running the catalogue command."""

    def __init__(self, home: Path, photos: Path, out: Path, base_url: str, redis_url: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "RUNFLOW_API_KEY": KEY, "RUNFLOW_API_BASE": base_url,
               "RUNFLOW_SHARED_STORE": redis_url, "RUNFLOW_CACHE_DIR": str(home / "cache"),
               "RUNFLOW_DATA_DIR": str(home / "data")}
        self.report = home / "report.json"
        argv = [sys.executable, "-c", _MACHINE, "isolate", str(photos), "--out", str(out),
                "--concurrency", str(CONCURRENCY), "--quiet", "--report", str(self.report)]
        self.launched = time.time()
        self.process = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        ready = self.process.stdout.readline().strip()
        assert ready == "ready", self.process.communicate()[1]
        self.ready_s = time.time() - self.launched

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def finish(self) -> tuple[float, int]:
        """(when it ended, how many photos it isolated itself)."""
        out, err = self.process.communicate(timeout=300)
        assert self.process.returncode == 0, err
        ended = json.loads(out.strip().splitlines()[-1])
        assert ended["code"] == 0, err
        return float(ended["end"]), int(json.loads(self.report.read_text())["summary"]["done"])


def learn_durations(tmp: Path, base_url: str, redis_url: str) -> None:
    """One photo outside the catalogue through the fleet's Redis, by a machine of its own: afterwards the
    store holds a learned run duration, as it does for any fleet after its first photo."""
    folder = Path(tempfile.mkdtemp(dir=tmp))
    Image.fromarray(photo(1024, 99)).save(folder / "first.jpg", quality=92)
    first = Machine(Path(tempfile.mkdtemp(dir=tmp)), folder, Path(tempfile.mkdtemp(dir=tmp)), base_url, redis_url)
    first.go()
    first.finish()


def fleet_run(tmp: Path, photos: Path, machines: int, *, learned: bool = False, join_after_s: float | None = None
              ) -> dict[str, Any]:
    """One set-up from scratch: fresh emulator and Redis (with a learned duration if `learned`); wall time
    from "go" to the last machine's end; paid runs of the catalogue only."""
    emulator, redis = EmulatorProcess(LATENCY_S), RedisServer(str(redis_server_binary()), tmp)
    redis.start()
    try:
        if learned:
            learn_durations(tmp, emulator.base_url, redis.url)
        before = emulator.stats()["creates"]
        homes = [Path(tempfile.mkdtemp(dir=tmp)) for _ in range(machines)]
        out = Path(tempfile.mkdtemp(dir=tmp))
        fleet = [Machine(home, photos, out, emulator.base_url, redis.url) for home in homes]
        go = time.time()
        for machine in fleet[: machines - 1 if join_after_s is not None else machines]:
            machine.go()
        if join_after_s is not None:
            time.sleep(max(0.0, go + join_after_s - time.time()))
            fleet[-1].go()
        ends, produced = zip(*(machine.finish() for machine in fleet), strict=True)
        return {"wall_s": max(ends) - go, "produced": list(produced), "paid_runs": emulator.stats()["creates"] - before,
                "start_up_s": round(max(machine.ready_s for machine in fleet), 2)}
    finally:
        redis.kill()
        emulator.stop()


def main() -> None:
    if redis_server_binary() is None:
        raise SystemExit("No redis-server: run ./run.sh test once (it installs the test extra).")
    load_before = os.getloadavg()
    setups = [(machines, learned) for learned in (False, True) for machines in (1, 2, 4)]
    results: dict[tuple[int, bool], list[dict[str, Any]]] = {setup: [] for setup in setups}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        photos = tmp / "photos"
        photos.mkdir()
        for number in range(PHOTOS):
            Image.fromarray(photo(1024, 7000 + number)).save(photos / f"p{number:02d}.jpg", quality=92)
        for _ in range(ROUNDS):  # interleaved, so drift in the machine's load hits every set-up alike
            for machines, learned in setups:
                results[(machines, learned)].append(fleet_run(tmp, photos, machines, learned=learned))
        one = {learned: statistics.median(run["wall_s"] for run in results[(1, learned)]) for learned in (False, True)}
        joined = fleet_run(tmp, photos, 2, learned=True, join_after_s=one[True] / 2)
    rows: list[dict[str, Any]] = []
    for (machines, learned), runs in results.items():
        wall = statistics.median(run["wall_s"] for run in runs)
        rows.append({"machines": machines, "durations": "learned" if learned else "new fleet",
                     "wall_s": round(wall, 2), "speed_up": round(one[learned] / wall, 2),
                     "rounds_s": [round(run["wall_s"], 2) for run in runs],
                     "paid_runs": [run["paid_runs"] for run in runs],
                     "isolated_per_machine": [run["produced"] for run in runs],
                     "start_up_s": max(run["start_up_s"] for run in runs)})
    rows.append({"machines": "1, then a 2nd joins at half time", "durations": "learned",
                 "wall_s": round(joined["wall_s"], 2), "speed_up": round(one[True] / joined["wall_s"], 2),
                 "paid_runs": [joined["paid_runs"]], "isolated_per_machine": [joined["produced"]],
                 "joined_after_s": round(one[True] / 2, 2)})
    load = load_window(load_before)
    print(f"{PHOTOS} photos, --concurrency {CONCURRENCY}, L = {LATENCY_S:.0f} s, one Redis, median of {ROUNDS}; "
          f"load average {load['before']} -> {load['after']}")
    print("| machines | run durations | wall time | speed-up | rounds | paid runs | isolated per machine |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['machines']} | {row['durations']} | {row['wall_s']:.2f} s | {row['speed_up']:.2f}x | "
              f"{row.get('rounds_s', '')} | {', '.join(map(str, row['paid_runs']))} | {row['isolated_per_machine']} |")
    out = Path(__file__).resolve().parent / "results" / "fleet_machines.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"when": datetime.now(timezone.utc).isoformat(timespec="minutes"), "load": load,
                               "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
