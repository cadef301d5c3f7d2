"""`--mask-on-input`: each photo's product mask on the photo's own canvas, written beside its output as
`<stem>-mask.png` (8-bit grey, the input's size, white = product).

The service re-frames the product, so the output's alpha does not line up with the photo; this mask does
(`placement.place_on_input`, from the pixels: no paid run). Placing costs about 0.1 s of CPU per 2K photo,
so it runs on worker threads (one per core) while the stream goes on; the run waits for them before its
summary. A product that cannot be placed gets no mask file: its row gets the QA flag `unplaced` and the
reason is printed.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import RunflowError
from ..pictures.placement import UNPLACED, place_on_input
from ..pictures.result_types import IsolationResult

MASK_SUFFIX = "-mask.png"


def mask_path(output: Path) -> Path:
    """Where an output's mask goes: `shoe.png` -> `shoe-mask.png`, beside it."""
    return output.with_name(output.stem + MASK_SUFFIX)


class MaskWriter:
    """Places results on their photos and writes the masks, on its own worker threads."""

    def __init__(self, workers: int | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2, thread_name_prefix="runflow-mask")
        self._pending: list[tuple[str, dict[str, Any], bool, Future[str | None]]] = []

    def submit(self, source: Path, result: IsolationResult, output: Path, row: dict[str, Any], name: str) -> None:
        """Place `result` on the photo at `source` and write the mask beside `output`; `row` (the input's
        report row) gets `mask`, the written path, or the flag `unplaced` (its `flags` are the result's)."""
        had_flags = bool(result.flags)
        self._pending.append((name, row, had_flags, self._pool.submit(_write, source, result, output, row)))

    def finish(self, flagged: dict[str, list[str]]) -> int:
        """Wait for every mask; count the unplaced ones in `flagged` (flag -> input names) and return how
        many inputs carry a flag for the first time because of it."""
        newly_flagged = 0
        for name, row, had_flags, future in self._pending:
            reason = future.result()
            if reason is None:
                continue
            print(f"NOT PLACED {name}: {reason}; no mask written.", file=sys.stderr)
            if UNPLACED in row.get("flags", []):
                flagged.setdefault(UNPLACED, []).append(name)
                newly_flagged += not had_flags
        self._pending.clear()
        self._pool.shutdown(wait=True)
        return newly_flagged


def _write(source: Path, result: IsolationResult, output: Path, row: dict[str, Any]) -> str | None:
    """The worker's job: None when the mask was written, else why not."""
    try:
        placement = place_on_input(source, result)
        if placement.mask is None:
            return placement.reason or "not placed"
        path = mask_path(output)
        Image.fromarray(np.round(placement.mask * 255).astype(np.uint8), "L").save(path)
    except (OSError, ValueError, RunflowError) as exc:
        return f"could not write the mask ({exc})"
    row["mask"] = str(path)
    return None
