"""A marketplace file's bytes: JPEG whose flat background decodes exactly, under a size cap; or PNG / WebP.

Why custom JPEG tables: a listing is refused for a background of 254 instead of 255, and an encoder at an
ordinary quality does not promise that. In baseline JPEG with 4:4:4 sampling every 8x8 block of each
channel is coded on its own; a block of one flat colour has only a DC coefficient, and it decodes back to
its exact value when that coefficient is not rounded, i.e. when the DC entry of the quantisation table is
1. So the tables here are libjpeg's standard ones scaled for the quality as libjpeg scales them, with the
DC entry set to 1 (about 1-3 % more bytes). Every block that holds no product then decodes to exactly the
background, at any quality; blocks the product reaches keep JPEG's usual ringing (docs/marketplace.md has
the measured figures). The colour conversion to YCbCr and back is exact for greys (white included) but not
for every colour, so `exact_in_jpeg` says whether a background can be kept exactly at all.

The cap: quality 95 first (nearly always fits: 0.5-2 MB for a 2000 px product on white); when it does not,
a bisection down to `JPEG_FLOOR` finds the highest quality that fits, at most 6 more encodes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

FORMATS = ("jpeg", "png", "webp")
EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}
PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
JPEG_START = 95  # the quality tried first
JPEG_FLOOR = 40  # the lowest quality the cap search goes to: below it a product photo visibly falls apart

# libjpeg's standard tables (ITU T.81 Annex K), in natural (row-major) order, as Pillow's qtables takes them.
_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)
_CHROMA = (17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
           47, 66, 99, 99, 99, 99, 99, 99) + (99,) * 32


@dataclass(frozen=True)
class Encoded:
    """A file's bytes, and the JPEG quality they were written at (None for PNG and WebP)."""

    data: bytes
    quality: int | None


def jpeg_tables(quality: int) -> list[list[int]]:
    """The luma and chroma tables for `quality` (1-100), scaled as libjpeg scales its own, DC entry 1."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    tables = []
    for standard in (_LUMA, _CHROMA):
        table = [min(255, max(1, (value * scale + 50) // 100)) for value in standard]
        table[0] = 1
        tables.append(table)
    return tables


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """Baseline JPEG, 4:4:4 (no chroma subsampling: coloured edges stay sharp), exact-DC tables."""
    out = io.BytesIO()
    image.save(out, "JPEG", qtables=jpeg_tables(quality), subsampling=0)
    return out.getvalue()


def encode(image: Image.Image, fmt: str, cap: int | None) -> Encoded:
    """`image` (RGB) as a `fmt` file; a JPEG at the highest quality (<= JPEG_START) whose size is within
    `cap`, or at JPEG_FLOOR when none is (the caller's checks then flag `over_cap`). PNG and WebP are
    lossless and have no quality to lower."""
    if fmt == "jpeg":
        return _jpeg_within(image, cap)
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, "PNG")
    elif fmt == "webp":
        image.save(out, "WEBP", lossless=True)
    else:
        raise ValueError(f"unknown format {fmt!r}; the formats are {', '.join(FORMATS)}")
    return Encoded(out.getvalue(), None)


def _jpeg_within(image: Image.Image, cap: int | None) -> Encoded:
    tried = {JPEG_START: encode_jpeg(image, JPEG_START)}
    if cap is None or len(tried[JPEG_START]) <= cap:
        return Encoded(tried[JPEG_START], JPEG_START)
    best = JPEG_FLOOR
    low, high = JPEG_FLOOR, JPEG_START - 1  # the highest quality that fits, if any, is in [low, high]
    while low <= high:
        middle = (low + high + 1) // 2
        tried[middle] = encode_jpeg(image, middle)
        if len(tried[middle]) <= cap:
            best, low = middle, middle + 1
        else:
            high = middle - 1
    if best not in tried:
        tried[best] = encode_jpeg(image, best)
    return Encoded(tried[best], best)


def exact_in_jpeg(color: tuple[int, int, int]) -> bool:
    """Whether a flat block of `color` decodes to exactly `color` from `encode_jpeg` (at any quality:
    the DC entry is 1 at all of them). True for every grey; false for many saturated colours, which
    YCbCr cannot carry exactly in 8 bits."""
    block = Image.new("RGB", (8, 8), color)
    decoded = Image.open(io.BytesIO(encode_jpeg(block, JPEG_START))).convert("RGB")
    return bool((np.asarray(decoded) == np.asarray(color, np.uint8)).all())


def nearest_exact_in_jpeg(color: tuple[int, int, int], reach: int = 3) -> tuple[int, int, int] | None:
    """The colour within `reach` per channel nearest to `color` that JPEG keeps exactly, or None."""
    steps = range(-reach, reach + 1)
    offsets = sorted(((r, g, b) for r in steps for g in steps for b in steps),
                     key=lambda step: (sum(part * part for part in step), step))
    for step in offsets:
        candidate = (color[0] + step[0], color[1] + step[1], color[2] + step[2])
        if all(0 <= part <= 255 for part in candidate) and exact_in_jpeg(candidate):
            return candidate
    return None
