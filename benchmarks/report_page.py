"""The HTML contact sheet (`--report x.html`) for a 2,000-photo catalogue: how long it takes to write,
what it weighs, and how fast it opens in a real browser (Debian's Chromium, from file://).

Writes a synthetic catalogue (1024x768 camera-like JPEG inputs, 1024x1024 RGBA PNG results, a mix of
paid, cached, earlier-run and failed items, some flagged), renders its report with
`runflow_api.catalogue.report_html.write` exactly as the CLI does, then opens it --repeats times in Chromium and
reads the browser's own timings: first contentful paint, DOMContentLoaded and load (lazy thumbnails
below the fold are not waited for, as a user would not), how many thumbnails a second later have loaded
(lazy loading: only those near the viewport), and the time a filter takes to apply to every card.
Prints the figures and saves them to benchmarks/results/report_page.json.

Run: `.venv/bin/python benchmarks/report_page.py [--count 2000] [--repeats 3]` (needs playwright).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from runflow_api.catalogue import report_html

RESULTS = Path(__file__).resolve().parent / "results" / "report_page.json"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DISTINCT = 16  # distinct pictures, copied to every path (thumbnails are still made one per item)


def picture(seed: int) -> tuple[Image.Image, Image.Image]:
    """A camera-like photo of an ellipse on a noisy light background, and its isolated RGBA result."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:768, 0:1024]
    inside = ((yy - 384) / 260.0) ** 2 + ((xx - 512) / 200.0) ** 2 <= 1
    photo = (225 + rng.normal(0, 4, (768, 1024, 1))).repeat(3, axis=2)
    photo[inside] = rng.integers(30, 200, 3) * (0.7 + 0.3 * xx[inside] / 1024)[:, None]
    rgba = np.zeros((1024, 1024, 4), np.uint8)
    rgba[128:896, :, :3] = np.clip(photo, 0, 255)
    rgba[128:896, :, 3] = inside * 255
    return Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)), Image.fromarray(rgba)


def catalogue(root: Path, count: int) -> dict[str, Any]:
    """The files and the CLI-shaped report of a catalogue of `count` inputs."""
    sources = []
    for seed in range(DISTINCT):
        photo, result = picture(seed)
        photo.save(root / f"src-{seed}.jpg", quality=90)
        result.save(root / f"src-{seed}.png", compress_level=3)
        sources.append((root / f"src-{seed}.jpg", root / f"src-{seed}.png"))
    (root / "in").mkdir()
    (root / "out").mkdir()
    rows = []
    for index in range(count):
        photo, result = sources[index % DISTINCT]
        source, output = root / "in" / f"sku-{index:05}.jpg", root / "out" / f"sku-{index:05}.png"
        shutil.copyfile(photo, source)
        kind = ("skipped", "done", "done", "cached")[index % 4] if index % 97 else "failed"
        row: dict[str, Any] = {"input": str(source), "output": str(output), "status": kind, "name": source.name}
        if kind == "failed":
            row.update(run_id=f"run-{index}", error="The run failed at Runflow (MODEL_ERROR); re-run to retry.")
        else:
            shutil.copyfile(result, output)
            row["flags"] = ["empty"] if index % 53 == 0 else ["cut_off", "soft"] if index % 71 == 0 else []
        if kind in ("done", "cached"):
            row.update(run_id=f"01a23aa6-{index:04}-7f3a-b828-ed412b9e00a8", cost="0.27" if kind == "done" else "0.00",
                       cached=kind == "cached", resumed=index % 40 == 1, seconds=7.5, outputs=[str(output)])
        rows.append(row)
    statuses = ("skipped", "done", "cached", "failed")
    counts = {status: sum(row["status"] == status for row in rows) for status in statuses}
    summary = {"total": count, "resumed": 0, "shared": 0, "waited_for_machine": 0, **counts,
               "cost": f"{0.27 * counts['done']:.2f}", "emulator": False, "dry_run": False,
               "flagged": sum(bool(row.get("flags")) for row in rows), "seconds": 1234.5}
    return {"summary": summary, "items": rows}


def open_in_chromium(page_path: Path, repeats: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    runs: list[dict[str, float]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(page_path.as_uri(), wait_until="load")
            timings = page.evaluate("""() => {
              const nav = performance.getEntriesByType('navigation')[0];
              const paint = performance.getEntriesByName('first-contentful-paint')[0];
              return {fcp_ms: paint ? paint.startTime : -1, dom_content_loaded_ms: nav.domContentLoadedEventEnd,
                      load_ms: nav.loadEventEnd};
            }""")
            page.wait_for_timeout(1000)
            timings["thumbnails_shown_at_top"] = page.evaluate(
                "Array.from(document.images).filter((img) => img.complete && img.naturalWidth > 0).length")
            timings["filter_ms"] = page.evaluate("""() => {
              const select = document.getElementById('flag');
              const started = performance.now();
              select.value = 'empty'; select.dispatchEvent(new Event('change'));
              return performance.now() - started;
            }""")
            runs.append(timings)
            page.close()
        browser.close()
    return {key: round(statistics.median(run[key] for run in runs), 1) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runflow-report-") as temp:
        root = Path(temp)
        report = catalogue(root, args.count)
        page_path = root / "report.html"
        started = time.perf_counter()
        report_html.write(page_path, report)
        write_s = time.perf_counter() - started
        thumbs = list((root / "report-thumbs").iterdir())
        figures = {
            "items": args.count,
            "write_s": round(write_s, 2),
            "html_kib": round(page_path.stat().st_size / 1024, 1),
            "thumbnails": len(thumbs),
            "thumbnails_mib": round(sum(p.stat().st_size for p in thumbs) / 2**20, 1),
            "thumbnail_mean_kib": round(statistics.mean(p.stat().st_size for p in thumbs) / 1024, 1),
            **open_in_chromium(page_path, args.repeats),
        }
    for key, value in figures.items():
        print(f"{key:24} {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
