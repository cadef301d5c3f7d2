"""The contact sheet (`--report x.html`) of a 2,000-photo catalogue, before and after it became a rendering.

Before: the report decodes every photo and every output again to make its thumbnails, and judges the
QA flags of outputs an earlier run wrote by decoding them (`flag_skipped`). After: the CLI makes each
output's thumbnails when it writes the output, from the pixels at hand (`contact_thumbs.for_output`),
and records its flags; the report copies small files. The write-time work is timed apart (it happens
during the run, once per output written, and never again for outputs a re-run keeps).

Uses `report_page.catalogue` (1024x768 JPEG photos, 1024x1024 RGBA PNG results, a mix of statuses).
Prints wall and CPU time (process CPU, all threads) and the machine's load, and saves them to
benchmarks/results/report_rendering.json.

Run: `.venv/bin/python benchmarks/report_rendering.py [--count 2000]`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image
from report_page import catalogue

from runflow_api.catalogue import contact_thumbs, report_html

RESULTS = Path(__file__).resolve().parent / "results" / "report_rendering.json"


def timed(work: Any) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return {"wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(time.process_time() - cpu, 2)}


def report_as_before(report: dict[str, Any], path: Path) -> None:
    for row in report["items"]:
        if row["status"] == "skipped":
            row.pop("flags", None)  # an earlier run's output: judged from its file, as the CLI did
    report_html.flag_skipped(report["items"])
    report_html.write(path, report)


def make_thumbnails_at_write_time(report: dict[str, Any], out_dir: Path) -> dict[str, float]:
    """Each output's thumbnails as the CLI makes them when it writes the output, with the result's pixels
    at hand (decoded here first, outside the timing: the engine has decoded them by then)."""
    wall = cpu = 0.0
    outputs = 0
    for row in report["items"]:
        if row["status"] == "failed":
            continue
        with Image.open(row["output"]) as picture:
            picture.load()
            started, started_cpu = time.perf_counter(), time.process_time()
            made = contact_thumbs.for_output(out_dir, Path(row["output"]), Path(row["input"]), picture)
            wall, cpu = wall + time.perf_counter() - started, cpu + time.process_time() - started_cpu
        outputs += 1
        row["thumbnails"] = {side: None if entry is None else [str(out_dir / entry[0]), *entry[1:]]
                             for side, entry in made.items()}
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "outputs": outputs,
            "per_output_ms": round(1000 * wall / max(1, outputs), 1)}


def report_as_after(report: dict[str, Any], path: Path) -> None:
    report_html.flag_skipped(report["items"])  # every row has its recorded flags: nothing is decoded
    report_html.write(path, report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    figures: dict[str, Any] = {"count": args.count, "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        before = catalogue(root, args.count)
        figures["before"] = timed(lambda: report_as_before(before, root / "before.html"))
        print(f"before: {figures['before']}", flush=True)
        (root / "again").mkdir()
        after = catalogue(root / "again", args.count)
        figures["write_time_thumbnails"] = make_thumbnails_at_write_time(after, root / "again" / "out")
        print(f"write time: {figures['write_time_thumbnails']}", flush=True)
        figures["after"] = timed(lambda: report_as_after(after, root / "after.html"))
    figures["load_after"] = os.getloadavg()
    print(json.dumps(figures, indent=2))
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
