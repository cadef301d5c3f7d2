"""Two processes on one machine, one cache and data directory, the same image at the same instant.

This is the two-ComfyUI (or ComfyUI + CLI) set-up: before the cross-process claim, 6 trials in 10 paid
twice. Each trial here starts both processes' calls at one agreed wall-clock instant.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from support import EMULATOR_KEY

TRIALS = 20
_WORKER = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {tests!r})
    from support import FAST_POLL, FAST_RETRY, product_photo
    from runflow_api import RunflowClient

    base_url, key, shared, start, interval, trials = sys.argv[1:7]
    client = RunflowClient(key, base_url, cache_dir=shared + "/cache", data_dir=shared + "/data",
                           retry=FAST_RETRY, poll=FAST_POLL, memory_cache=False)
    photos = [product_photo(seed) for seed in range(int(trials))]
    for trial, photo in enumerate(photos):
        time.sleep(max(0.0, float(start) + trial * float(interval) - time.time()))
        result = client.isolate(photo)
        print(json.dumps({{"trial": trial, "run_id": result.run_id, "cached": result.cached}}), flush=True)
    """
)


def test_two_processes_at_the_same_instant_pay_once(emulator_factory, tmp_path: Path):
    emu = emulator_factory(latency=0.3)
    script = tmp_path / "worker.py"
    script.write_text(_WORKER.format(tests=str(Path(__file__).parent)))
    start = time.time() + 4.0  # both processes are importing numpy and Pillow until then
    interval = 0.8
    argv = [emu.base_url, EMULATOR_KEY, str(tmp_path / "shared"), str(start), str(interval), str(TRIALS)]
    workers = [
        subprocess.Popen([sys.executable, str(script), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err.decode()
    lines = [[json.loads(line) for line in out.splitlines()] for out, _ in outputs]
    assert [len(found) for found in lines] == [TRIALS, TRIALS]
    for first, second in zip(*lines, strict=True):
        assert first["run_id"] == second["run_id"], f"trial {first['trial']}: two runs for one image"
        assert first["cached"] != second["cached"], "one process ran it; the other took its stored result"
    assert emu.stats["creates"] == TRIALS, f"{emu.stats['creates'] - TRIALS} double payment(s) in {TRIALS} trials"
    assert emu.stats["uploads"] == TRIALS, "the waiting process did not upload the image again"
