"""Refuse a batch whose output tensors cannot fit in memory, before anything is uploaded or paid.

ComfyUI's IMAGE and MASK outputs are float32: a 4K image is 4096 × 4096 × 3 × 4 bytes = 192 MiB, its
mask 64 MiB and its RGBA 256 MiB. A batch that needs more than the machine has would be paid for and
then die in the allocator (or take the whole ComfyUI down with it). The figures are known before the
first upload: the batch size, the canvas each image gets (aspect ratio and resolution) and which outputs
are built (`linked_outputs`), so the node says so first, with the fix.

Available memory is read from `RUNFLOW_MEMORY_AVAILABLE_MB` when set (e.g. a container whose limit the
system figures do not show), else from psutil (in ComfyUI's requirements), else /proc/meminfo; when none
can be read the check is skipped.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..runflow_api.errors import InputRejected
from ..runflow_api.product_isolation import ASPECT_RATIOS, AUTO_ASPECT, canvas_size, nearest_aspect_ratio
from .tensors import CHANNELS, SLOT_NAMES, TENSOR_SLOTS

AVAILABLE_ENV = "RUNFLOW_MEMORY_AVAILABLE_MB"
MIB = 1024 * 1024


def canvases(items: Sequence[Any], aspect_ratio: str, resolution: str) -> tuple[list[tuple[int, int]], bool]:
    """(width, height) of each item's output, and whether that is exact. With "auto", an array input's
    own shape picks its ratio; an image behind a URL is not read yet, so it is counted at the smallest
    canvas any ratio gives (the estimate is then a lower bound, never a false refusal)."""
    if aspect_ratio != AUTO_ASPECT:
        return [canvas_size(aspect_ratio, resolution)] * len(items), True
    smallest = min((canvas_size(ratio, resolution) for ratio in ASPECT_RATIOS), key=lambda size: size[0] * size[1])
    sizes = [
        canvas_size(nearest_aspect_ratio(item.shape[1], item.shape[0]), resolution)
        if isinstance(item, np.ndarray)
        else smallest
        for item in items
    ]
    return sizes, all(isinstance(item, np.ndarray) for item in items)


def output_bytes(sizes: Sequence[tuple[int, int]], build: frozenset[int] | None) -> int:
    """Bytes of the float32 outputs built for these canvases (padded to the batch's largest width and
    height, as `tensors.assemble_outputs` does); `build` None means all three."""
    if not sizes:
        return 0
    width, height = max(w for w, _ in sizes), max(h for _, h in sizes)
    slots = TENSOR_SLOTS if build is None else TENSOR_SLOTS & build
    channels = sum(CHANNELS[slot] or 1 for slot in slots)
    return len(sizes) * width * height * channels * 4


def available_bytes() -> int | None:
    """Memory this process may still use: the override, psutil, /proc/meminfo, or None (unknown)."""
    override = os.environ.get(AVAILABLE_ENV, "").strip()
    if override:
        try:
            megabytes = float(override)
        except ValueError:
            megabytes = -1.0
        if not 0 <= megabytes < float("inf"):
            raise InputRejected(
                f"{AVAILABLE_ENV} is {override!r}: it must be a number of megabytes (e.g. 16000). "
                "Fix or unset it; unset, the pack reads the machine's available memory itself."
            )
        return int(megabytes * MIB)
    try:
        return int(importlib.import_module("psutil").virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil absent or unable to read: fall back, never fail a run
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check(
    items: Sequence[Any], *, aspect_ratio: str, resolution: str, build: frozenset[int] | None, several: bool = False
) -> None:
    """Raise InputRejected, with the figures and the fix, when the outputs to build need more memory than
    is available. Called before any upload, so a refusal costs nothing. `several`: runs may return
    several images each (outputs="all"), so one per input is a lower bound."""
    sizes, exact = canvases(items, aspect_ratio, resolution)
    exact = exact and not several
    needed = output_bytes(sizes, build)
    available = available_bytes()
    if available is None or needed <= available:
        return
    slots = sorted(TENSOR_SLOTS if build is None else TENSOR_SLOTS & build)
    names = ", ".join(SLOT_NAMES[slot] for slot in slots)
    per_image = needed // len(sizes)
    fits = available // per_image
    width, height = max(w for w, _ in sizes), max(h for _, h in sizes)
    raise InputRejected(
        f"Not enough memory for this batch's outputs: {len(sizes)} image(s) at {resolution} "
        f"({width}x{height}) need {'at least ' if not exact else ''}{_gib(needed)} for the connected "
        f"output(s) {names} ({_gib(per_image)} per image, float32), and this machine has {_gib(available)} "
        f"available. Nothing was uploaded or paid. Fix: a smaller batch (about {fits} image(s) fit), a lower "
        "resolution (each step down needs a quarter), or fewer of the image, mask and rgba outputs connected "
        f"(unconnected ones are not built). {AVAILABLE_ENV} overrides the available figure."
    )


def _gib(count: int) -> str:
    return f"{count / (1024 * MIB):.2f} GiB"
