"""What the `runflow/product-isolation` model accepts, what it costs, and how our parameters map onto it.

The emulator validates against these same tables, so the client and the stand-in service cannot drift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from .errors import InputRejected

MODEL_ID = "runflow/product-isolation"
ASPECT_RATIOS: tuple[str, ...] = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
AUTO_ASPECT = "auto"
RESOLUTIONS: dict[str, int] = {"1K": 1024, "2K": 2048, "4K": 4096}
PRICE_PER_IMAGE = Decimal("0.27")
MAX_PROMPT_CHARS = 1000


def ratio_value(aspect_ratio: str) -> float:
    """"16:9" -> 1.777...: width over height."""
    width, height = aspect_ratio.split(":")
    return int(width) / int(height)


def nearest_aspect_ratio(width: int, height: int, allowed: tuple[str, ...] = ASPECT_RATIOS) -> str:
    """The allowed ratio nearest to width:height, compared in log space so that 2:1 and 1:2 are
    equally far from 1:1 (a linear comparison would favour landscape ratios)."""
    if width <= 0 or height <= 0:
        raise InputRejected(f"Cannot pick an aspect ratio for a {width}x{height} image: it has no pixels.")
    own = math.log(width / height)
    return min(allowed, key=lambda ratio: abs(math.log(ratio_value(ratio)) - own))


def canvas_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """The (width, height) the model renders: the long side is the resolution's pixel count."""
    long_side = RESOLUTIONS[resolution]
    value = ratio_value(aspect_ratio)
    if value >= 1:
        return long_side, max(1, round(long_side / value))
    return max(1, round(long_side * value)), long_side


@dataclass(frozen=True)
class IsolationParams:
    """Validated parameters of one isolation request, before "auto" is resolved against an image."""

    aspect_ratio: str = "1:1"
    resolution: str = "2K"
    prompt: str | None = None

    def __post_init__(self) -> None:
        if self.aspect_ratio != AUTO_ASPECT and self.aspect_ratio not in ASPECT_RATIOS:
            raise InputRejected(
                f"aspect_ratio {self.aspect_ratio!r} is not one the model accepts. "
                f"Use one of: {AUTO_ASPECT}, {', '.join(ASPECT_RATIOS)}."
            )
        if self.resolution not in RESOLUTIONS:
            raise InputRejected(
                f"resolution {self.resolution!r} is not one the model accepts. Use one of: {', '.join(RESOLUTIONS)}."
            )
        if self.prompt is not None:
            if not isinstance(self.prompt, str):
                raise InputRejected(f"prompt must be text, got {type(self.prompt).__name__}.")
            cleaned = self.prompt.strip()
            if len(cleaned) > MAX_PROMPT_CHARS:
                raise InputRejected(
                    f"prompt is {len(cleaned)} characters long; the limit is {MAX_PROMPT_CHARS}. "
                    "Name the product to isolate in a short phrase, e.g. 'the left shoe'."
                )
            object.__setattr__(self, "prompt", cleaned or None)

    def resolved_for(self, width: int, height: int) -> IsolationParams:
        """Replace "auto" with the allowed ratio nearest to the image's own shape."""
        if self.aspect_ratio != AUTO_ASPECT:
            return self
        return IsolationParams(nearest_aspect_ratio(width, height), self.resolution, self.prompt)

    def run_input(self, image_url: str) -> dict[str, str]:
        """The `input` object of a create-run request; an empty prompt is omitted, as the model page asks."""
        if self.aspect_ratio == AUTO_ASPECT:
            raise ValueError("resolve 'auto' with resolved_for() before building the run input")
        body = {"image_url": image_url, "aspect_ratio": self.aspect_ratio, "resolution": self.resolution}
        if self.prompt:
            body["prompt"] = self.prompt
        return body
