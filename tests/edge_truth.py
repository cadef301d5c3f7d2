"""Synthetic cut-outs whose true foreground colour is known, to measure edge clean-up.

Used by tests/test_edges.py and benchmarks/edges.py, so the tests assert the figures the benchmark prints.
A case is a textured product colour F (defined everywhere), a strongly coloured studio background B, and an
alpha with a body whose rim goes from crisp to very soft (fabric, motion blur) plus thin hair-like strands
of partial opacity. What the service would return is I = aF + (1-a)B at 8 bits, with the 8-bit alpha.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from runflow_api.pictures import backgrounds

# Backgrounds a user composites onto: dark, light, grey and two saturated colours.
NEW_BACKGROUNDS: tuple[tuple[int, int, int], ...] = ((0, 0, 0), (255, 255, 255), (128, 128, 128), (220, 40, 40),
                                                     (40, 60, 220))
STUDIO_BACKGROUNDS: tuple[tuple[int, int, int], ...] = ((30, 200, 70), (200, 40, 190), (40, 90, 230))


@dataclass(frozen=True)
class EdgeCase:
    foreground: np.ndarray  # HxWx3 float64 in 0..255: the product's true colour, everywhere
    alpha: np.ndarray  # HxW uint8
    observed: np.ndarray  # HxWx4 uint8: round(aF + (1-a)B) and the alpha, as a cut-out comes back
    clean: np.ndarray  # HxWx4 uint8: round(F) and the alpha, a cut-out that is already clean

    @property
    def band(self) -> np.ndarray:
        return (self.alpha > 0) & (self.alpha < 255)


def make_case(size: int = 512, seed: int = 0) -> EdgeCase:
    """A size x size case; the seed picks the texture, the strands and one of STUDIO_BACKGROUNDS."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    foreground = _texture(yy / size, xx / size, rng)
    alpha = _body(yy, xx, size, rng)
    strands = _strands(size, rng)
    alpha = 1 - (1 - alpha) * (1 - strands)
    alpha8 = np.round(alpha * 255).astype(np.uint8)
    studio = np.asarray(STUDIO_BACKGROUNDS[seed % len(STUDIO_BACKGROUNDS)], np.float64)
    background = np.clip(studio + 12 * np.sin(xx / size * 3 + seed)[..., None] + rng.normal(0, 2, (size, size, 1)),
                         0, 255)
    a = alpha8[..., None] / 255.0
    observed = np.round(a * foreground + (1 - a) * background).astype(np.uint8)
    return EdgeCase(
        foreground=foreground,
        alpha=alpha8,
        observed=np.dstack([observed, alpha8]),
        clean=np.dstack([np.round(foreground).astype(np.uint8), alpha8]),
    )


def _texture(y: np.ndarray, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A warm product colour with gradients, stripes and grain (a knit, a fur, a print)."""
    base = rng.uniform(110, 190, 3)
    tilt = rng.uniform(-50, 50, (2, 3))
    stripes = 25 * np.sin(2 * np.pi * (7 * x + 3 * y + rng.uniform()))[..., None] * rng.uniform(0.3, 1, 3)
    grain = rng.normal(0, 6, (*x.shape, 3))
    return np.clip(base + tilt[0] * y[..., None] + tilt[1] * x[..., None] + stripes + grain, 0, 255)


def _body(yy: np.ndarray, xx: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """An irregular blob whose rim softness varies around it from ~1 px to ~size/40 px."""
    cy, cx = size * rng.uniform(0.45, 0.55), size * rng.uniform(0.45, 0.55)
    angle = np.arctan2(yy - cy, xx - cx)
    distance = np.hypot(yy - cy, xx - cx)
    radius = size * 0.3 * (1 + 0.08 * np.sin(5 * angle + rng.uniform(0, 6)) + 0.04 * np.sin(11 * angle))
    softness = 1 + (size / 40) * (0.5 + 0.5 * np.sin(2 * angle + rng.uniform(0, 6))) ** 2
    return np.clip((radius - distance) / softness + 0.5, 0, 1)


def _strands(size: int, rng: np.random.Generator) -> np.ndarray:
    """Thin curved hairs from the rim outwards, 0.6-1.6 px wide, opacity 0.35-0.95, antialiased."""
    transparent = np.ones((size, size))  # the product of (1 - strand coverage)
    offsets = np.arange(-2, 3)
    dy, dx = (offset.ravel() for offset in np.meshgrid(offsets, offsets, indexing="ij"))
    for _ in range(70):
        angle = rng.uniform(0, 2 * np.pi)
        start = size * 0.27
        length = size * rng.uniform(0.05, 0.16)
        bend = rng.uniform(-1.2, 1.2)
        t = np.linspace(0, 1, max(8, int(length * 4)))
        heading = angle + bend * t
        step = length / len(t)
        py = size / 2 + start * np.sin(angle) + np.cumsum(np.sin(heading)) * step
        px = size / 2 + start * np.cos(angle) + np.cumsum(np.cos(heading)) * step
        half_width = rng.uniform(0.3, 0.8) * (1 - 0.6 * t)  # tapering
        opacity = rng.uniform(0.35, 0.95)
        cell_y = np.floor(py)[:, None].astype(int) + dy
        cell_x = np.floor(px)[:, None].astype(int) + dx
        gap = np.hypot(cell_y + 0.5 - py[:, None], cell_x + 0.5 - px[:, None])
        value = np.clip(half_width[:, None] + 0.5 - gap, 0, 1) * opacity
        keep = (cell_y >= 0) & (cell_y < size) & (cell_x >= 0) & (cell_x < size) & (value > 0)
        cell_y, cell_x, value = cell_y[keep], cell_x[keep], value[keep]
        if not len(value):
            continue
        top, left = cell_y.min(), cell_x.min()
        strand = np.zeros((cell_y.max() - top + 1, cell_x.max() - left + 1))
        np.maximum.at(strand, (cell_y - top, cell_x - left), value)  # a pixel's coverage: its nearest point
        transparent[top:top + strand.shape[0], left:left + strand.shape[1]] *= 1 - strand
    return 1 - transparent


def composite_error(rgba: np.ndarray, case: EdgeCase) -> float:
    """Mean absolute error (0..255) of 8-bit composites of `rgba` on NEW_BACKGROUNDS against the true
    composites aF + (1-a)B', over the edge band (0 < a < 1) and the three channels."""
    band = case.band
    a = case.alpha[band][:, None] / 255.0
    truth_fg = case.foreground[band]
    rgb, alpha = np.ascontiguousarray(rgba[..., :3]), rgba[..., 3].astype(np.float32) / 255
    errors = []
    for color in NEW_BACKGROUNDS:
        shown = backgrounds.composite(rgb, alpha, color)[band].astype(np.float64)
        truth = a * truth_fg + (1 - a) * np.asarray(color, np.float64)
        errors.append(np.abs(shown - truth).mean())
    return float(np.mean(errors))


def quality(clean_up: Callable[[np.ndarray], np.ndarray], case: EdgeCase) -> tuple[float, float]:
    """(error ratio cleaned / as returned on `case.observed`, worsening of an already clean input in % of
    the range) for a clean-up function HxWx4 uint8 -> HxWx4 uint8."""
    ratio = composite_error(clean_up(case.observed), case) / composite_error(case.observed, case)
    worse = (composite_error(clean_up(case.clean), case) - composite_error(case.clean, case)) / 255 * 100
    return ratio, worse
