"""`margin`: empty space kept around the product inside the framed output, made locally from a stored result.

Marketplaces ask for a product that fills a set share of the frame (e.g. 85 %: a margin of 15). The model
frames the product itself and has no such parameter, so it is a rendering option: free to change, never
in the cache key. A margin of M % makes the product's bounding box (every pixel with alpha > 0) fit inside
the central (100 - M) % of the canvas' width and height, M/2 % on each side: a product that reaches further
is scaled down (Pillow resamples RGBA premultiplied, so no dark fringe) and placed at the canvas' centre;
the canvas keeps its size. A product already inside is left exactly as it is.

With a shadow (issue #36), product and shadow are framed together by `shadows.place_framed`'s rule: the
scale is still measured on the product alone, the box of product and shadow is centred (so the product sits
off-centre by at most the shadow's own extent), and the scale shrinks further only if that box would not fit
the canvas, so the shadow drawn next is never cut.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputRejected
from .shadows import ShadowOptions, framed_box, place_framed, product_box, shadow_box

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


def apply_margin(pixels: np.ndarray, margin: float, shadow: ShadowOptions | None = None) -> np.ndarray:
    """HxWx4 (or HxWx3, taken as opaque) uint8 pixels with at least `margin` % of empty canvas around the
    product, framed with room for `shadow` (drawn afterwards, `shadows.add_shadow`); the same array when
    product and shadow already fit as they are (or there is no product)."""
    rgba = pixels if pixels.shape[2] == 4 else np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)])
    height, width = rgba.shape[:2]
    box = product_box(rgba[..., 3])
    if box is None:
        return pixels
    left, top, right, bottom = box
    keep = 1 - margin / 100
    reach = shadow_box(rgba[..., 3], shadow) if shadow is not None else None
    framed = framed_box(box, reach)
    inside = framed[0] >= 0 and framed[1] >= 0 and framed[2] <= width and framed[3] <= height
    scale = place_framed(box, reach, (width, height),
                         min(1.0, width * keep / (right - left), height * keep / (bottom - top))).scale
    if scale >= 1 and inside:
        return pixels
    size = (max(1, round((right - left) * scale)), max(1, round((bottom - top) * scale)))
    product = Image.fromarray(np.ascontiguousarray(rgba[top:bottom, left:right])).resize(size, Image.Resampling.LANCZOS)
    # The framed box centred in whole pixels (without a shadow it is the product's: centred as ever), and
    # the product at its place inside it.
    x = (width - round((framed[2] - framed[0]) * scale)) // 2 + round((left - framed[0]) * scale)
    y = (height - round((framed[3] - framed[1]) * scale)) // 2 + round((top - framed[1]) * scale)
    x, y = min(max(0, x), width - size[0]), min(max(0, y), height - size[1])
    out = np.zeros_like(rgba)
    out[y:y + size[1], x:x + size[0]] = np.asarray(product)
    return out
