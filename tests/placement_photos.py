"""Synthetic product photos whose product footprint is known, to measure `place_on_input`.

Used by tests/test_placement.py, tests/test_nodes.py (input_mask) and benchmarks/placement.py. A photo is a
light studio background with a little noise and a textured product (a bottle-like rounded body with a
label, stripes and print, shaded), anywhere in the frame: the footprint is the product's exact pixels.
The emulator isolates it as the service would (crop, scale, centre on a new canvas), so the placement
has to find it from the pixels alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ProductPhoto:
    pixels: np.ndarray  # HxWx3 uint8
    footprint: np.ndarray  # HxW bool: the product's pixels

    def iou(self, mask: np.ndarray) -> float:
        """Intersection over union of `mask` (alpha polarity, product at 0.5 and above) with the footprint."""
        placed = mask >= 0.5
        return float((placed & self.footprint).sum() / (placed | self.footprint).sum())


def product_photo(size: tuple[int, int], centre: tuple[float, float], half: tuple[float, float],
                  seed: int = 0) -> ProductPhoto:
    """A `size` (width, height) photo with a product centred at `centre` (x, y), `half` (x, y) its half
    width and height: a superellipse (a rounded box, like a bottle or a box on a shelf)."""
    width, height = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    pixels = np.empty((height, width, 3), np.float64)
    pixels[:] = 232 + rng.normal(0, 2, (height, width, 1))
    u, v = (xx - centre[0]) / half[0], (yy - centre[1]) / half[1]
    footprint = np.abs(u) ** 3 + np.abs(v) ** 3 <= 1
    shade = (0.75 + 0.25 * np.cos(u * 1.4))[..., None]
    body = np.stack([120 + 60 * u, 50 + 40 * v, 90 + 20 * np.sin(3 * u + seed)], axis=-1)
    label = ((np.abs(v - 0.1) < 0.3) & (np.abs(u) < 0.8))[..., None] * np.array([110, 150, 90])
    stripes = (np.sin(v * 9 + seed) > 0.4)[..., None] * np.array([60, 90, 30])
    print_ = (np.sin(u * 17) * np.sin(v * 13) > 0.6)[..., None] * np.array([-50, 40, 110])
    product = np.clip((body + label + stripes + print_) * shade, 0, 255)
    pixels[footprint] = product[footprint]
    return ProductPhoto(np.clip(pixels, 0, 255).astype(np.uint8), footprint)


# The placements every check covers: (name, size, centre, half size), sizes like real photos, kept small
# enough for the emulator to isolate quickly.
CASES: dict[str, tuple[tuple[int, int], tuple[float, float], tuple[float, float]]] = {
    "centre": ((1200, 900), (600, 450), (230, 300)),
    "near the top-left": ((1200, 900), (190, 170), (150, 130)),
    "near the bottom-right": ((1200, 900), (1040, 760), (130, 110)),
    "wide photo": ((1800, 600), (1100, 300), (380, 200)),
    "tall photo": ((540, 1500), (270, 620), (190, 380)),
}


def case(name: str, seed: int = 0) -> ProductPhoto:
    size, centre, half = CASES[name]
    return product_photo(size, centre, half, seed)
