"""Small helpers the tests share (constants and synthetic photos); fixtures live in conftest.py."""

from __future__ import annotations

import numpy as np

from runflow_api import PollPolicy, RetryPolicy

EMULATOR_KEY = "rf_live_testsuite_0001"
FAST_RETRY = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05, jitter=0.01)
FAST_POLL = PollPolicy(first_poll=0.02, idle_interval=0.1, dense_interval=0.02, dense_lead=0.05)


def product_photo(seed: int = 0, size: tuple[int, int] = (96, 128)) -> np.ndarray:
    """A small photo-like product shot: a shaded coloured blob on a light, slightly noisy background."""
    rng = np.random.default_rng(seed)
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width]
    background = 225 + rng.normal(0, 3, (height, width, 1))
    image = np.repeat(background, 3, axis=2)
    cy, cx = height / 2 + seed % 5, width / 2 - seed % 7
    inside = ((yy - cy) / (height * 0.3)) ** 2 + ((xx - cx) / (width * 0.25)) ** 2 <= 1
    colour = np.array([40 + (seed * 37) % 180, 60 + (seed * 53) % 150, 180 - (seed * 29) % 120], dtype=float)
    shade = 0.7 + 0.3 * (xx / width)
    image[inside] = colour * shade[inside][:, None]
    return np.clip(image, 0, 255).astype(np.uint8)

