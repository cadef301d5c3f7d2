"""`margin`: empty space kept around the product inside the framed output, made locally from a stored result.

Marketplaces ask for a product that fills a set share of the frame (e.g. 85 %: a margin of 15). The model
frames the product itself and has no such parameter, so it is a rendering option: free to change, never
in the cache key. A margin of M % makes the product's bounding box (every pixel with alpha > 0) fit inside
the central (100 - M) % of the canvas' width and height, M/2 % on each side: a product that reaches further
is scaled down (Pillow resamples RGBA premultiplied, so no dark fringe) and placed at the canvas' centre;
the canvas keeps its size. A product already inside is left exactly as it is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from .errors import InputRejected

MARGIN_MAX = 40


def check_margin(margin: Any) -> Any:
    """`margin` as the library, the CLI and the nodes accept it: a number of percent from 0 to 40."""
    number = margin if isinstance(margin, (int, float)) and not isinstance(margin, bool) else None
    if number is None or not math.isfinite(number) or not 0 <= number <= MARGIN_MAX:
        raise InputRejected(
            f"margin must be a number from 0 to {MARGIN_MAX} (percent of the canvas kept empty around the "
            f"product), got {margin!r}. 0 keeps the model's framing."
        )
    return margin


def apply_margin(pixels: np.ndarray, margin: float) -> np.ndarray:
    """HxWx4 (or HxWx3, taken as opaque) uint8 pixels with at least `margin` % of empty canvas around the
    product; the same array when the product already keeps that margin (or there is no product)."""
    rgba = pixels if pixels.shape[2] == 4 else np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)])
    height, width = rgba.shape[:2]
    solid = rgba[..., 3] > 0
    rows, cols = np.flatnonzero(solid.any(axis=1)), np.flatnonzero(solid.any(axis=0))
    if not len(rows):
        return pixels
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    keep = 1 - margin / 100
    scale = min(width * keep / (right - left), height * keep / (bottom - top))
    if scale >= 1:
        return pixels
    size = (max(1, round((right - left) * scale)), max(1, round((bottom - top) * scale)))
    product = Image.fromarray(np.ascontiguousarray(rgba[top:bottom, left:right])).resize(size, Image.Resampling.LANCZOS)
    out = np.zeros_like(rgba)
    y, x = (height - size[1]) // 2, (width - size[0]) // 2
    out[y:y + size[1], x:x + size[0]] = np.asarray(product)
    return out
