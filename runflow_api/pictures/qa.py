"""QA flags from a result's matte: hints that a cut-out may have gone wrong, so that the few bad results
of a 2,000-photo catalogue can be found without opening every file.

A flag is a hint, never an error: nothing fails, retries or costs anything because of one. Every limit
lives in `Thresholds` (documented in docs/qa.md, with the cases they were picked from).

Speed: the matte is judged on a sampled grid of at most `Thresholds.grid` pixels a side (the shape of a
product needs no detail), and only the four border lines are read at full size (a cut at the frame can
be a few pixels wide). That keeps a 4K result at about a millisecond (benchmarks/qa_flags.py).
Connected parts are counted with `scipy.ndimage.label` when scipy is importable (ComfyUI ships it);
without it, with a run-length union-find over the same grid, which gives the same parts (both use
4-connectivity) in under 10 ms.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

MATTE_FLAGS: tuple[str, ...] = ("empty", "full", "cut_off", "fragments", "tiny", "soft")
# `enlarged` is judged from the input's size and the result's, not from the matte (`input_flags`).
FLAGS: tuple[str, ...] = (*MATTE_FLAGS, "enlarged")
# Flags a later step gives a result, not judged from its matte: never stored with it nor part of `JUDGE`.
# `unplaced`: placement.place_on_input could not find the product in its photo.
LATER_FLAGS: tuple[str, ...] = ("unplaced",)
ALL_FLAGS: tuple[str, ...] = FLAGS + LATER_FLAGS


@dataclass(frozen=True)
class Thresholds:
    """Every limit the flags use, in one place. Shares are of the canvas unless said otherwise."""

    grid: int = 256  # long side of the sampled grid the matte is judged on
    clear_background: float = 0.05  # alpha at or below this is clearly background
    clear_product: float = 0.95  # alpha at or above this is clearly product
    product: float = 0.5  # alpha at or above this counts as product for extent, parts and borders
    empty_below: float = 0.002  # `empty`: less than 0.2% of the canvas shows anything
    full_above: float = 0.95  # `full`: product covers more than 95% of the canvas
    cut_off_above: float = 0.01  # `cut_off`: product on more than 1% of one border line's length
    fragment_share: float = 0.05  # a part is sizeable from 5% of the product's area
    fragments_from: int = 3  # `fragments`: this many sizeable parts (a pair of shoes, 2, is no fault)
    tiny_below: float = 0.25  # `tiny`: the product's box spans less than 25% of the canvas both ways
    soft_above: float = 0.5  # `soft`: over half the visible matte is neither clear product nor background
    # `enlarged`: the input is scaled up more than 4x to fill the canvas. Out of the repr, so out of JUDGE:
    # it is judged afresh from two sizes on every result, never stored with a matte's flags.
    enlarged_above: float = field(default=4.0, repr=False)


DEFAULT_THRESHOLDS = Thresholds()
# Which judge wrote flags kept with a stored result: flags from other thresholds or flag names are judged
# again, so changing a limit never leaves stale hints in the cache. Only the matte's flags are stored.
JUDGE = "qa-1:" + hashlib.sha256(repr((MATTE_FLAGS, DEFAULT_THRESHOLDS)).encode()).hexdigest()[:12]


def stored(meta: dict[str, Any]) -> list[str] | None:
    """The flags a stored result's metadata carries, when today's judge wrote them; else None (judge again)."""
    entry = meta.get("qa")
    if not isinstance(entry, dict) or entry.get("judge") != JUDGE:
        return None
    found = entry.get("flags")
    if not isinstance(found, list) or not all(isinstance(name, str) and name in FLAGS for name in found):
        return None
    return list(found)


def to_store(found: list[str]) -> dict[str, Any]:
    """The metadata field that keeps a result's flags with it (`stored` reads it back)."""
    return {"judge": JUDGE, "flags": list(found)}


def enlargement(input_size: tuple[int, int], output_size: tuple[int, int]) -> float:
    """How many times the input (width, height) is scaled to fit the output canvas: the smaller of the two
    ratios, as the photo fits the canvas by its tighter side (a wide strip on a square canvas is fitted
    by its width and is not enlarged for being thin)."""
    return min(output_size[0] / input_size[0], output_size[1] / input_size[1])


def input_flags(input_size: tuple[int, int], output_size: tuple[int, int],
                thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[str]:
    """`enlarged` when the input is enlarged more than `thresholds.enlarged_above` times to reach the
    chosen resolution: a 64 px photo blown up to 1K is blurry however well it is cut out."""
    return ["enlarged"] if enlargement(input_size, output_size) > thresholds.enlarged_above else []


def flags(alpha: np.ndarray, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[str]:
    """The QA flags of a matte, in the order of `FLAGS`. `alpha` is HxW, float 0..1 or uint8 0..255."""
    matte = np.asarray(alpha)
    if matte.ndim != 2 or matte.size == 0:
        raise ValueError(f"alpha must be a non-empty HxW matte, got an array of shape {matte.shape}.")
    height, width = matte.shape
    rows, cols = _grid_size(width, height, thresholds)
    sampled = matte[np.ix_(_centres(height, rows), _centres(width, cols))]
    borders = (matte[0], matte[-1], matte[:, 0], matte[:, -1])
    return _judge(_unit(sampled), [_unit(line) for line in borders], thresholds)


def image_flags(image: Image.Image, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[str] | None:
    """The flags of an image's alpha channel, or None when it has none (a result composited on a colour
    has no matte left to judge). Pillow samples the grid (nearest: the same pixel centres as `flags`)
    and crops the four border lines, so a 4K result is never copied whole."""
    if "A" not in image.getbands():
        return None
    width, height = image.size
    rows, cols = _grid_size(width, height, thresholds)
    sampled = np.asarray(image.resize((cols, rows), Image.Resampling.NEAREST).getchannel("A"))
    boxes = ((0, 0, width, 1), (0, height - 1, width, height), (0, 0, 1, height), (width - 1, 0, width, height))
    borders = [np.asarray(image.crop(box).getchannel("A")).ravel() for box in boxes]
    return _judge(_unit(sampled), [_unit(line) for line in borders], thresholds)


def file_flags(path: str | os.PathLike[str], thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[str] | None:
    """The flags of a saved result (a finished output of an earlier run), None without an alpha channel."""
    with Image.open(path) as image:
        return image_flags(image, thresholds)


def _grid_size(width: int, height: int, thresholds: Thresholds) -> tuple[int, int]:
    """(rows, columns) of the sampled grid: every `step`-th pixel, the long side at most `grid`."""
    step = max(1, -(-max(width, height) // thresholds.grid))
    return -(-height // step), -(-width // step)


def _centres(size: int, samples: int) -> np.ndarray:
    """The pixel each of `samples` equal cells of a `size`-pixel line is read at: its centre, as
    Pillow's nearest-neighbour resize picks it."""
    return ((np.arange(samples) + 0.5) * (size / samples)).astype(np.intp)


def _judge(grid: np.ndarray, borders: list[np.ndarray], thresholds: Thresholds) -> list[str]:
    """The flags from a sampled matte and the four full-size border lines, all float 0..1."""
    visible = grid > thresholds.clear_background
    if visible.mean() < thresholds.empty_below:
        return ["empty"]
    found: set[str] = set()
    product = grid >= thresholds.product
    if product.mean() > thresholds.full_above:
        found.add("full")  # a background left in also touches the frame: `cut_off` would say nothing more
    elif any(float((line >= thresholds.product).mean()) > thresholds.cut_off_above for line in borders):
        found.add("cut_off")
    if product.any():
        if _sizeable_parts(product, thresholds.fragment_share) >= thresholds.fragments_from:
            found.add("fragments")
        if _extent(product) < thresholds.tiny_below:
            found.add("tiny")
    unsure = visible & (grid < thresholds.clear_product)
    if unsure.sum() > thresholds.soft_above * visible.sum():
        found.add("soft")
    return [name for name in FLAGS if name in found]


def _unit(values: np.ndarray) -> np.ndarray:
    """A matte sample as float32 0..1: uint8 scaled, floats clipped (NaN read as background)."""
    if values.dtype == np.uint8:
        return values.astype(np.float32) / 255.0
    return np.clip(np.nan_to_num(values.astype(np.float32), nan=0.0), 0.0, 1.0)


def _extent(product: np.ndarray) -> float:
    """The larger of the product box's height and width, as a share of the canvas's."""
    rows, cols = np.flatnonzero(product.any(axis=1)), np.flatnonzero(product.any(axis=0))
    height = (rows[-1] - rows[0] + 1) / product.shape[0]
    width = (cols[-1] - cols[0] + 1) / product.shape[1]
    return float(max(height, width))


def _sizeable_parts(product: np.ndarray, share: float) -> int:
    """How many 4-connected parts hold at least `share` of the product's area."""
    areas = part_areas(product)
    return int((areas >= share * areas.sum()).sum())


def part_areas(mask: np.ndarray) -> np.ndarray:
    """The pixel count of each 4-connected part of a boolean mask (order unspecified)."""
    try:
        from scipy import ndimage
    except ImportError:
        return run_part_areas(mask)
    labels, count = ndimage.label(mask)
    return np.bincount(labels.ravel(), minlength=count + 1)[1:]


def run_part_areas(mask: np.ndarray) -> np.ndarray:
    """`part_areas` without scipy: each row's runs of product are joined (union-find) with the runs of
    the row above that they overlap. Fast on a sampled grid: a product is a few runs per row."""
    parent: list[int] = []
    areas: list[int] = []

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    above: list[tuple[int, int, int]] = []
    for row in np.asarray(mask, dtype=bool):
        edges = np.diff(np.concatenate(([0], row.view(np.int8), [0])))
        runs = []
        first = 0
        for start, end in zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True):
            run = len(parent)
            parent.append(run)
            areas.append(end - start)
            while first < len(above) and above[first][1] <= start:
                first += 1  # runs above that end before this one cannot touch any later run either
            for above_start, _above_end, other in above[first:]:
                if above_start >= end:
                    break
                a, b = root(run), root(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            runs.append((start, end, run))
        above = runs
    totals: dict[int, int] = {}
    for node, area in enumerate(areas):
        top = root(node)
        totals[top] = totals.get(top, 0) + area
    return np.array(list(totals.values()), dtype=np.int64)


def flagged_line(flagged: dict[str, list[str]], flagged_inputs: int, *, names: int = 3,
                 order: tuple[str, ...] = ALL_FLAGS) -> str:
    """The end-of-run line: "3 flagged: 2 empty (a.jpg, b.jpg), 1 cut_off (c.jpg)". `flagged` maps each
    flag to the inputs that carry it, in the order they finished; `flagged_inputs` counts inputs with any
    flag (one input may carry several). Empty when nothing is flagged. `order`: the flags' names in the
    order shown (the marketplace checks pass `marketplace_checks.FLAGS`)."""
    if not flagged_inputs:
        return ""
    parts = []
    for name in order:
        carriers = flagged.get(name, [])
        if carriers:
            shown = ", ".join(carriers[:names]) + (", ..." if len(carriers) > names else "")
            parts.append(f"{len(carriers)} {name} ({shown})")
    return f"{flagged_inputs} flagged: {', '.join(parts)}"
