"""Which resolution tier to buy for a set of marketplace presets, chosen before anything is paid.

Runflow charges the same for every tier, so one run at a tier large enough for the largest preset holds
every preset's pixels; the smallest such tier is chosen because it downloads, decodes and stores fastest.

"Large enough" without knowing the product's shape (nothing is paid yet): the service frames the product
so that its box spans `FRAMING` of the canvas along its limiting side (the emulator does exactly this; the
real model "about" this, see docs/qa.md). Whichever side limits the product in the result, it has at least
FRAMING x that side's pixels along it; a preset needs fill x its own side along the same direction. So a
tier whose canvas gives FRAMING x width >= fill x preset width AND FRAMING x height >= fill x preset
height renders every product shape without enlarging it. After the run, the rendering's own `enlarged`
flag says what really happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputRejected
from ..product_isolation import AUTO_ASPECT, RESOLUTIONS, canvas_size, nearest_aspect_ratio
from .marketplace_presets import Preset

FRAMING = 0.85  # the share of the result's canvas the product's box spans along its limiting side


@dataclass(frozen=True)
class TierChoice:
    """The tier to buy, its canvas, and the presets that will show the product enlarged anyway: no tier
    covers them, or the input photo itself has fewer pixels than they need."""

    resolution: str
    canvas: tuple[int, int]
    enlarged: tuple[str, ...]


def covers(canvas: tuple[int, int], preset: Preset, framing: float = FRAMING) -> bool:
    """A product framed on `canvas` has the pixels `preset` needs, whatever the product's shape."""
    return framing * canvas[0] >= preset.fill * preset.width and framing * canvas[1] >= preset.fill * preset.height


def choose_tier(presets: list[Preset], aspect_ratio: str = "1:1",
                input_size: tuple[int, int] | None = None) -> TierChoice:
    """The smallest tier (1K, 2K, 4K) whose result covers every preset; 4K when none covers them all.

    `aspect_ratio` is the run's ('auto' needs `input_size`, the photo's (width, height)). A preset is
    predicted `enlarged` when the 4K result does not cover it, or when the photo could not cover it even
    if the product filled the whole photo: a larger tier then only adds pixels the service invented."""
    if not presets:
        raise InputRejected("Choose at least one preset to pick a resolution tier for.")
    if aspect_ratio == AUTO_ASPECT:
        if input_size is None:
            raise InputRejected("aspect_ratio 'auto' is resolved from the photo: pass input_size=(width, height).")
        aspect_ratio = nearest_aspect_ratio(*input_size)
    tiers = list(RESOLUTIONS)
    fitting = (tier for tier in tiers if all(covers(canvas_size(aspect_ratio, tier), preset) for preset in presets))
    chosen = next(fitting, tiers[-1])
    canvas = canvas_size(aspect_ratio, chosen)
    enlarged = tuple(preset.name for preset in presets
                     if not covers(canvas, preset) or input_size is not None and _too_small(input_size, preset))
    return TierChoice(chosen, canvas, enlarged)


def _too_small(photo: tuple[int, int], preset: Preset) -> bool:
    """Even a product spanning the whole photo would be enlarged: the photo is narrower than the preset's
    product width and lower than its product height."""
    return photo[0] < preset.fill * preset.width and photo[1] < preset.fill * preset.height
