"""The fleet's acceptance, with real processes: each has its own cache and data directories (another
machine, as far as the pack can tell), all share one real redis-server, and the emulator counts the
creates and uploads, which is what a studio pays for."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from support import EMULATOR_KEY, product_photo

_WORKER = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {tests!r})
    from support import FAST_POLL, FAST_RETRY, product_photo
    from runflow_api import RunflowClient, RunflowError
    from runflow_api.fleet import SharedStore

    base_url, key, redis_url, home, start, seeds, budget, claim_ttl = sys.argv[1:9]
    store = SharedStore(redis_url, claim_ttl_s=float(claim_ttl))
    client = RunflowClient(key, base_url, cache_dir=home + "/cache", data_dir=home + "/data", retry=FAST_RETRY,
                           poll=FAST_POLL, memory_cache=False, shared_store=store, team_budget=budget or None)
    photos = [product_photo(int(seed)) for seed in seeds.split(",")]
    time.sleep(max(0.0, float(start) - time.time()))
    try:
        outcomes = client.isolate_many(photos)
    except RunflowError as exc:
        outcomes = [exc] * len(photos)
    for outcome in outcomes:
        if isinstance(outcome, RunflowError):
            print(json.dumps({{"error": type(outcome).__name__, "message": str(outcome)}}), flush=True)
        else:
            print(json.dumps({{"run_id": outcome.run_id, "cached": outcome.cached, "resumed": outcome.resumed,
                              "shared": outcome.shared_hit, "waited": outcome.waited_for}}), flush=True)
    """
)


class Fleet:
    def __init__(self, tmp_path: Path, emu, redis_server) -> None:
        self.script = tmp_path / "worker.py"
        self.script.write_text(_WORKER.format(tests=str(Path(__file__).parent)))
        self.tmp_path, self.emu, self.redis = tmp_path, emu, redis_server

    def start(self, name: str, seeds: list[int], *, at: float = 0.0, budget: str = "", claim_ttl: float = 20.0
              ) -> subprocess.Popen[bytes]:
        argv = [self.emu.base_url, EMULATOR_KEY, self.redis.url, str(self.tmp_path / name), str(at),
                ",".join(map(str, seeds)), budget, str(claim_ttl)]
        return subprocess.Popen([sys.executable, str(self.script), *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    @staticmethod
    def lines(process: subprocess.Popen[bytes]) -> list[dict]:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
        return [json.loads(line) for line in out.splitlines()]


def test_two_machines_at_once_pay_once_and_a_third_pays_nothing(emulator_factory, redis_server, tmp_path):
    emu = emulator_factory(latency=1.0)
    fleet = Fleet(tmp_path, emu, redis_server)
    seeds = list(range(8))
    at = time.time() + 4.0  # both are importing numpy and Pillow until then
    first, second = (fleet.lines(p) for p in [fleet.start("m1", seeds, at=at), fleet.start("m2", seeds, at=at)])
    assert len(first) == len(second) == 8 and all("run_id" in line for line in first + second)
    assert [a["run_id"] for a in first] == [b["run_id"] for b in second], "both ended with the same 8 results"
    assert emu.stats["creates"] == 8, f"{emu.stats['creates'] - 8} paid twice across the two machines"
    assert emu.stats["uploads"] == 8
    taken = [line for line in first + second if line["cached"]]
    assert len(taken) == 8, "each photo was produced by one machine and taken by the other"
    assert all(line["waited"] == "machine" or line["shared"] for line in taken), taken

    third = fleet.lines(fleet.start("m3", seeds))
    assert all(line["cached"] and line["shared"] for line in third), third
    assert (emu.stats["creates"], emu.stats["uploads"]) == (8, 8), "an empty disk: 0 uploads, 0 creates"


def test_a_killed_machine_s_runs_are_collected_not_bought_again(emulator_factory, redis_server, tmp_path):
    emu = emulator_factory(latency=6.0)
    fleet = Fleet(tmp_path, emu, redis_server)
    seeds = [11, 12, 13, 14]
    doomed = fleet.start("dead", seeds, claim_ttl=2.0)
    deadline = time.monotonic() + 30
    while emu.stats["creates"] < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the run ids reach the shared journal just after the create answers
    assert emu.stats["creates"] == 4, "the first machine holds 4 claims and waits on 4 paid runs"
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=10)
    started = time.monotonic()
    survivor = fleet.lines(fleet.start("survivor", seeds, claim_ttl=2.0))
    assert [line.get("resumed") for line in survivor] == [True] * 4, survivor
    assert emu.stats["creates"] == 4, "0 new creates: the dead machine's paid runs were collected"
    assert time.monotonic() - started < 30


def test_a_team_budget_holds_across_three_machines(emulator_factory, redis_server, tmp_path):
    emu = emulator_factory(latency=0.5)
    fleet = Fleet(tmp_path, emu, redis_server)
    at = time.time() + 4.0
    machines = [fleet.start(f"m{n}", [100 + 3 * n, 101 + 3 * n, 102 + 3 * n], at=at, budget="1.00")
                for n in range(3)]
    lines = [line for process in machines for line in fleet.lines(process)]
    paid = [line for line in lines if "run_id" in line]
    refused = [line for line in lines if line.get("error") == "TeamBudgetExceeded"]
    assert emu.stats["creates"] <= 3 and len(paid) == emu.stats["creates"], lines
    assert len(paid) + len(refused) == 9, lines
    assert all("of $1.00 for today (UTC)" in line["message"] and "$0.27 each" in line["message"]
               for line in refused), refused


def test_two_shells_running_the_cli_on_one_folder(emulator_factory, redis_server, tmp_path):
    from PIL import Image

    emu = emulator_factory(latency=0.5)
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(6):
        Image.fromarray(product_photo(seed)).save(photos / f"p{seed}.png")
    at = time.time() + 3.0
    shells = []
    for name in ("s1", "s2"):
        env = {**os.environ, "RUNFLOW_SHARED_STORE": redis_server.url, "RUNFLOW_API_KEY": EMULATOR_KEY,
               "RUNFLOW_API_BASE": emu.base_url, "RUNFLOW_CACHE_DIR": str(tmp_path / name / "cache"),
               "RUNFLOW_DATA_DIR": str(tmp_path / name / "data")}
        argv = [sys.executable, "-c", f"import time; time.sleep(max(0, {at} - time.time())); "
                "from runflow_api.catalogue.cli import main; raise SystemExit(main())",
                "isolate", str(photos), "--out", str(tmp_path / name / "out"), "--quiet"]
        shells.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outputs = [shell.communicate(timeout=120) for shell in shells]
    for shell, (out, err) in zip(shells, outputs, strict=True):
        assert shell.returncode == 0, (out + err).decode()
    assert emu.stats["creates"] == 6, "creates equal the unique photos across both shells"
    for name in ("s1", "s2"):
        assert len(list((tmp_path / name / "out").glob("*.png"))) == 6
    summaries = b"".join(out + err for out, err in outputs).decode()
    fleet_lines = [line for line in summaries.splitlines() if line.startswith("Shared store")]
    assert len(fleet_lines) == 2 and all("(connected)" in line for line in fleet_lines), summaries
    assert "Today (team): $1.62 spent" in fleet_lines[-1], fleet_lines
