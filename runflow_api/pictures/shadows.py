"""Shadows drawn from the matte: a product that stands on the page instead of floating.

A cut-out on plain white looks pasted on. Two shadows need no model, only the alpha we already have:
- `contact`: a soft shadow on the ground under the product's base, as if it stood on a surface. The
  footprint is read from the matte's lowest solid pixels (the columns that reach the ground; a part lifted
  above it casts less), squashed into a thin ellipse at the base and blurred: two layers (a dark tight core
  and a wide soft penumbra), each a blurred footprint across and a fall-off down and up, drawn only in the
  few rows around the base, so it costs almost nothing whatever the image size.
- `drop`: the whole silhouette offset down and to the right and blurred. The blur runs on a copy reduced
  so that its radius is ~3 cells (area average), as three box passes per axis (close to a Gaussian), and
  is read back bilinearly: a 2K blur costs a few milliseconds instead of a few hundred.

Every length is a fraction of the product's size (the geometric mean of its box's sides), so a 1K and a
4K rendering of one result look the same, and a framer can take the shadow's box from the matte as
returned (`shadow_box`), place product and shadow together (`place_framed`), then draw the shadow.

The shadow goes *under* the product ("over" compositing, shadow colour black): where the product is
opaque its pixels are unchanged bit for bit; where it is empty the output holds black at the shadow's
opacity, so a transparent output carries a semi-transparent shadow onto whatever is composited later, and
a background colour composited under it (`backgrounds.composite`) darkens that colour. Pixels the shadow
does not reach are untouched, so a background stays exact there. numpy + Pillow only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import InputRejected

SHADOW_NONE = "none"
SHADOW_CONTACT = "contact"
SHADOW_DROP = "drop"
SHADOW_MODES = (SHADOW_NONE, SHADOW_CONTACT, SHADOW_DROP)
DEFAULT_STRENGTH = 0.5
DEFAULT_SOFTNESS = 0.5

Box = tuple[int, int, int, int]  # left, top, right, bottom; right and bottom exclusive, as PIL's getbbox

_SOLID = 128  # alpha from which a pixel counts as the product's body when finding its base
_BLUR_CELLS = 3  # the drop blur's radius in cells of the reduced copy: enough for a smooth Gaussian
_PASSES = 3  # box passes per axis: three give a near-Gaussian with sigma ~ the box radius


@dataclass(frozen=True)
class _Geometry:
    """A shadow's lengths in pixels for one product size: see `_geometry` for how each scales."""

    reach: int  # contact: how far above the ground a part of the base still casts a shadow
    core_spread: float  # contact core: horizontal blur (sigma, px) and depth below / above the base
    core_down: int
    core_up: int
    soft_spread: float  # contact penumbra: the same, wider
    soft_down: int
    soft_up: int
    offset_x: int  # drop: how far right and down the silhouette is moved, and its blur (sigma, px)
    offset_y: int
    blur: float


def check_shadow(mode: str) -> str:
    """`shadow` as the library, the CLI and the nodes accept it."""
    if mode not in SHADOW_MODES:
        raise InputRejected(
            f"shadow must be one of {', '.join(repr(name) for name in SHADOW_MODES)}, got {mode!r}: 'contact' "
            "puts a soft shadow on the ground under the product, 'drop' casts its silhouette down and to the "
            "right, 'none' draws no shadow."
        )
    return mode


def check_shadow_strength(strength: float) -> float:
    """`shadow_strength`: the shadow's darkest opacity, 0 (invisible) to 1 (black where darkest)."""
    return _unit_number("shadow_strength", strength, "0 draws nothing, 1 is black where the shadow is darkest")


def check_shadow_softness(softness: float) -> float:
    """`shadow_softness`: 0 (crisp) to 1 (very diffuse), relative to the product's size."""
    return _unit_number("shadow_softness", softness, "0 is crisp, 1 very diffuse; it scales with the product's size")


def _unit_number(name: str, value: float, meaning: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputRejected(f"{name} must be a number from 0 to 1, got {type(value).__name__} {value!r} ({meaning}).")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InputRejected(f"{name} must be from 0 to 1, got {value!r} ({meaning}). Use for example 0.5.")
    return float(value)


@dataclass(frozen=True)
class ShadowOptions:
    """What to draw: `mode` is `shadow` (none, contact, drop); `strength` and `softness` are in 0..1."""

    mode: str = SHADOW_NONE
    strength: float = DEFAULT_STRENGTH
    softness: float = DEFAULT_SOFTNESS

    def __post_init__(self) -> None:
        check_shadow(self.mode)
        check_shadow_strength(self.strength)
        check_shadow_softness(self.softness)

    @property
    def draws(self) -> bool:
        """False when the options leave every pixel as it is."""
        return self.mode != SHADOW_NONE and self.strength > 0


def product_box(alpha: np.ndarray) -> Box | None:
    """The box of every pixel with alpha > 0 (PIL's getbbox convention), or None for an empty matte."""
    rows = np.flatnonzero(alpha.max(axis=1))
    if not len(rows):
        return None
    cols = np.flatnonzero(alpha.max(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _geometry(box: Box, softness: float) -> _Geometry:
    """Every length as a fraction of the product's size L (geometric mean of its box's sides): a framer
    scaling the product scales its shadow alike. The fractions were chosen by eye on the sample photos."""
    size = math.sqrt((box[2] - box[0]) * (box[3] - box[1]))
    core_down = max(1, round((0.008 + 0.012 * softness) * size))
    soft_down = max(2, round((0.06 + 0.12 * softness) * size))
    return _Geometry(
        reach=max(2, round(0.05 * size)),
        core_spread=max(1.0, (0.004 + 0.008 * softness) * size),
        core_down=core_down,
        core_up=max(1, core_down // 2),
        soft_spread=max(1.0, (0.015 + 0.04 * softness) * size),
        soft_down=soft_down,
        soft_up=max(1, soft_down // 3),
        offset_x=round(0.025 * size),
        offset_y=round(0.035 * size),
        blur=max(1.0, (0.01 + 0.04 * softness) * size),
    )


def _spread(sigma: float) -> int:
    """How far three box passes of radius ~sigma reach: 3 radii."""
    return 3 * max(1, round(sigma))


def shadow_box(alpha: np.ndarray, options: ShadowOptions) -> Box | None:
    """Where the shadow of the matte `alpha` reaches with room enough around it, so possibly partly outside
    the canvas: what a framer needs to place product and shadow together (`framed_box`) before it scales
    and moves the product (every length scales with the product, so the box scales alike). The shadow
    `render_shadow` draws always lies inside it. None when nothing is drawn."""
    found = _measured(alpha, options)
    if found is None:
        return None
    box, base, geometry = found
    return _extent(box, base, geometry, options.mode)


def render_whole(alpha: np.ndarray, options: ShadowOptions) -> tuple[Box, np.ndarray] | None:
    """`render_shadow` with room enough around the product: the shadow whole, never fitted to `alpha`'s
    frame, its box relative to `alpha`'s origin (so possibly beyond it). What a framer that placed product
    and shadow together draws, and what a checker draws again from the product's matte alone."""
    reach = shadow_box(alpha, options)
    if reach is None:
        return None
    height, width = alpha.shape
    room = framed_box((0, 0, width, height), reach)
    padded = np.zeros((room[3] - room[1], room[2] - room[0]), np.uint8)
    padded[-room[1]:height - room[1], -room[0]:width - room[0]] = alpha
    drawn = render_shadow(padded, options)
    if drawn is None:
        return None
    (left, top, right, bottom), shade = drawn
    return (room[0] + left, room[1] + top, room[0] + right, room[1] + bottom), shade


def drawn_box(alpha: np.ndarray, options: ShadowOptions) -> Box | None:
    """Where the whole shadow of `alpha` (`render_whole`) actually darkens pixels (opacity > 0), relative
    to `alpha`'s origin; None when nothing is drawn. Tighter than `shadow_box`, whose blur tails round to
    nothing: what a framer that must keep the shadow off its borders (a marketplace's exact background)
    measures, instead of shrinking the product for tails no one sees."""
    whole = render_whole(alpha, options)
    if whole is None:
        return None
    (left, top, _, _), shade = whole
    rows, cols = np.flatnonzero(shade.max(axis=1)), np.flatnonzero(shade.max(axis=0))
    if not len(rows):
        return None
    return left + int(cols[0]), top + int(rows[0]), left + int(cols[-1]) + 1, top + int(rows[-1]) + 1


def framed_box(product: Box, shadow: Box | None) -> Box:
    """The box a framer (a margin, a marketplace fill) centres in its canvas when a shadow is drawn.

    The rule: the product's fill (its scale) is measured on `product` alone, so a shadow never shrinks the
    product; the position centres product and shadow together, i.e. this box, the union of the two. The
    product then sits off-centre by half of what the shadow adds on one side more than on the other:
    never more than the shadow's own extent beyond the product. If the framed box is too big for the canvas
    at the product's scale, the framer shrinks the scale until it fits, so the shadow is never cut."""
    if shadow is None:
        return product
    return (min(product[0], shadow[0]), min(product[1], shadow[1]),
            max(product[2], shadow[2]), max(product[3], shadow[3]))


@dataclass(frozen=True)
class Placement:
    """Where a framer puts the product: its box scaled by `scale`, its top-left corner at (`left`, `top`)
    of the canvas (fractional: the framer rounds as it resamples)."""

    scale: float
    left: float
    top: float


def place_framed(product: Box, shadow: Box | None, canvas: tuple[int, int], scale: float) -> Placement:
    """`framed_box`'s rule as numbers, for a framer that chose `scale` from the product alone (its fill or
    margin): the same scale unless product and shadow would not fit the canvas (`canvas` is width, height),
    then the largest that fits; the framed box centred. Render the shadow after placing the product: its
    lengths scale with the product, so it lands where `shadow_box` said, scaled."""
    framed = framed_box(product, shadow)
    framed_width, framed_height = framed[2] - framed[0], framed[3] - framed[1]
    scale = min(scale, canvas[0] / framed_width, canvas[1] / framed_height)
    framed_left = (canvas[0] - framed_width * scale) / 2
    framed_top = (canvas[1] - framed_height * scale) / 2
    return Placement(scale, framed_left + (product[0] - framed[0]) * scale,
                     framed_top + (product[1] - framed[1]) * scale)


def render_shadow(alpha: np.ndarray, options: ShadowOptions) -> tuple[Box, np.ndarray] | None:
    """The shadow of the matte `alpha` (HxW uint8) as (box inside the canvas, its opacity as uint8 of the
    box's size), or None when nothing is drawn. The shadow is fitted to the canvas: a contact shadow
    squeezes its fall-off into the rows left below the product, a drop shadow's offset shrinks to the room
    there is; the part of a blur that still reaches an edge is cut there."""
    found = _measured(alpha, options)
    if found is None:
        return None
    box, base, geometry = found
    level = 255 * options.strength  # the opacity level, out of 255, where the shadow is darkest
    if options.mode == SHADOW_CONTACT:
        return _contact(alpha, box, base, geometry, level)
    return _drop(alpha, box, geometry, level)


def add_shadow(rgba: np.ndarray, options: ShadowOptions) -> np.ndarray:
    """`rgba` (HxWx4 uint8, straight alpha) with the shadow drawn under the product, as a new array; the
    same array when nothing is drawn. Opaque product pixels, and pixels the shadow does not reach, are
    unchanged; elsewhere the shadow (black) is composited under the product: alpha a + s (1 - a), colour
    the product's weighted by its share of that alpha."""
    if not isinstance(rgba, np.ndarray) or rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        what = f"{rgba.dtype} array of shape {rgba.shape}" if isinstance(rgba, np.ndarray) else type(rgba).__name__
        raise InputRejected(
            f"add_shadow needs an HxWx4 uint8 array with straight alpha, got a {what}. Convert with "
            "np.asarray(image.convert('RGBA'))."
        )
    matte = np.ascontiguousarray(rgba[..., 3])  # every scan below runs several times faster on it
    drawn = render_shadow(matte, options)
    if drawn is None:
        return rgba
    (left, top, right, bottom), shade = drawn
    out = rgba.copy()
    alpha = matte[top:bottom, left:right]
    cast = shade > 0
    # Empty pixels the shadow reaches become black at its opacity: one write of a 32-bit word per pixel
    # (R, G, B, A little-endian, so alpha is the top byte), much faster than per-channel masked writes.
    words = out.view("<u4")[top:bottom, left:right, 0]
    np.copyto(words, shade.astype("<u4") << 24, where=cast & (alpha == 0))
    # Partly transparent product pixels: the product over the shadow, in float on these few pixels only.
    rows, cols = np.divmod(np.flatnonzero(cast & (np.subtract(alpha, 1, dtype=np.uint8) < 254)), right - left)
    under = shade[rows, cols]
    rows += top
    cols += left
    product_alpha = matte[rows, cols].astype(np.float32)
    combined = product_alpha + under * (255 - product_alpha) / 255
    share = product_alpha / combined  # combined >= the shadow's level > 0
    out[rows, cols, :3] = (rgba[rows, cols, :3] * share[:, None] + 0.5).astype(np.uint8)
    out[rows, cols, 3] = (combined + 0.5).astype(np.uint8)
    return out


def shadow_image(image: Image.Image, options: ShadowOptions) -> Image.Image:
    """A finished rendering with its shadow: an RGBA image whose transparency carries the shadow (composite
    a background colour afterwards, as for any cut-out). An image without alpha (already on a background)
    has no matte to cast one from and is returned as it is, as is any image when nothing is drawn."""
    if image.mode != "RGBA" or not options.draws:
        return image
    pixels = np.asarray(image)
    shadowed = add_shadow(pixels, options)
    return image if shadowed is pixels else Image.fromarray(shadowed)


def _measured(alpha: np.ndarray, options: ShadowOptions) -> tuple[Box, int, _Geometry] | None:
    """(the product's box, its base, the shadow's lengths) when `options` draw a shadow of `alpha`, else None."""
    if not options.draws:
        return None
    stance = _stance(alpha)
    if stance is None:
        return None
    box, base = stance
    return box, base, _geometry(box, options.softness)


def _stance(alpha: np.ndarray) -> tuple[Box, int] | None:
    """(the product's box, its base: the lowest row holding a solid pixel), or None when nothing in the
    matte is solid (a faint haze stands on nothing and casts nothing)."""
    box = product_box(alpha)
    if box is None:
        return None
    left, top, right, bottom = box
    solid_rows = np.flatnonzero(alpha[top:bottom, left:right].max(axis=1) >= _SOLID)
    return (box, top + int(solid_rows[-1])) if len(solid_rows) else None


def _extent(box: Box, base: int, geometry: _Geometry, mode: str) -> Box:
    """The box a shadow covers with room enough around the product."""
    left, top, right, bottom = box
    if mode == SHADOW_CONTACT:
        side = _spread(max(geometry.core_spread, geometry.soft_spread))
        up = max(geometry.core_up, geometry.soft_up)
        return left - side, base - up, right + side, base + max(geometry.core_down, geometry.soft_down) + 1
    cell, _, pad = _drop_grid(geometry)
    grid_left, grid_top = left + geometry.offset_x - pad * cell, top + geometry.offset_y - pad * cell
    return (grid_left, grid_top, grid_left + (-(-(right - left) // cell) + 2 * pad) * cell,
            grid_top + (-(-(bottom - top) // cell) + 2 * pad) * cell)


def _contact(alpha: np.ndarray, box: Box, base: int, geometry: _Geometry, level: float) -> tuple[Box, np.ndarray]:
    """A contact shadow: (box, uint8 opacity), two outer products of a footprint and a fall-off."""
    height, width = alpha.shape
    left, _, right, _ = box
    band_top = max(0, base - geometry.reach + 1)
    band = alpha[band_top:base + 1, left:right] >= _SOLID
    # Height of each column's lowest solid pixel above the base: the lower, the darker its shadow.
    gap = np.argmax(band[::-1], axis=0).astype(np.float32)
    footprint = np.where(band.any(axis=0), (1 - gap / geometry.reach) ** 2, 0).astype(np.float32)
    room_below = height - 1 - base  # the fall-off below the base is squeezed into the rows there are
    reach_left, reach_top, reach_right, reach_bottom = _extent(box, base, geometry, SHADOW_CONTACT)
    side = left - reach_left
    out_left, out_top = max(0, reach_left), max(0, reach_top)
    out_right, out_bottom = min(width, reach_right), min(height, reach_bottom)
    padded = np.zeros(reach_right - reach_left, np.float32)
    padded[side:side + right - left] = footprint
    rows = np.arange(out_top, out_bottom) - base  # row offsets from the base line
    opacity = np.zeros((out_bottom - out_top, out_right - out_left), np.float32)
    for weight, sharpness, spread, down, up in (
        (0.5, 1.5, geometry.core_spread, geometry.core_down, geometry.core_up),  # dark and tight
        # The wide penumbra, weighted and falling off linearly so that it shows beside a base that is already
        # dark (issue #36: at 0.5 and ^1.5 it was barely visible on the sample); the sum is clipped to 1, so
        # `strength` is still the opacity where the shadow is darkest.
        (0.8, 1.0, geometry.soft_spread, geometry.soft_down, geometry.soft_up),
    ):
        across = _blur_line(padded, spread)[out_left - reach_left:out_right - reach_left]
        # Deepest under the middle of the footprint, shallower where it thins out at the ends: an ellipse.
        depth = np.where(rows >= 0, min(down, room_below), up).astype(np.float32)[:, None] * np.sqrt(across) + 1
        fall = np.clip(1 - np.abs(rows).astype(np.float32)[:, None] / depth, 0, 1)
        opacity += weight * across * fall ** sharpness
    return (out_left, out_top, out_right, out_bottom), _levels(opacity, level)


def _drop_grid(geometry: _Geometry) -> tuple[int, int, int]:
    """(cell: px per cell of the reduced copy, the blur's box radius in cells, the cells of padding its
    reach needs around the silhouette: three passes of radius r reach 3 r, bilinear reading one more)."""
    cell = max(1, round(geometry.blur / _BLUR_CELLS))
    radius = max(1, round(geometry.blur / cell))
    return cell, radius, _PASSES * radius + 1


def _drop(alpha: np.ndarray, box: Box, geometry: _Geometry, level: float) -> tuple[Box, np.ndarray]:
    """A drop shadow: (box, uint8 opacity), the silhouette moved and blurred on a reduced copy whose
    levels are read back bilinearly at full size (8-bit all the way: no full-size float pass)."""
    height, width = alpha.shape
    left, top, right, bottom = box
    cell, radius, pad = _drop_grid(geometry)
    silhouette = np.zeros((-(-(bottom - top) // cell) * cell, -(-(right - left) // cell) * cell), np.uint8)
    silhouette[:bottom - top, :right - left] = alpha[top:bottom, left:right]
    reduced = np.asarray(Image.fromarray(silhouette).reduce(cell) if cell > 1 else silhouette, np.float32) / 255
    grid = np.pad(reduced, pad)
    for axis in (0, 1):
        grid = _box_passes(grid, radius, axis)
    small = Image.fromarray(_levels(grid, level))
    opacity = np.asarray(small.resize((grid.shape[1] * cell, grid.shape[0] * cell), Image.Resampling.BILINEAR))
    # With too little room right of or below the product, the offset shrinks to the room there is.
    origin_x = left + max(0, min(geometry.offset_x, width - right)) - pad * cell  # where opacity[0, 0] goes
    origin_y = top + max(0, min(geometry.offset_y, height - bottom)) - pad * cell
    out_left, out_top = max(0, origin_x), max(0, origin_y)
    out_right = min(width, origin_x + opacity.shape[1])
    out_bottom = min(height, origin_y + opacity.shape[0])
    crop = opacity[out_top - origin_y:out_bottom - origin_y, out_left - origin_x:out_right - origin_x]
    return (out_left, out_top, out_right, out_bottom), crop


def _levels(opacity: np.ndarray, level: float) -> np.ndarray:
    """Opacity in 0..1 as uint8 levels out of 255 at `level` where it is 1, rounded to nearest: a tail under
    half a level becomes 0, so the pixels it would have touched stay exactly as they were."""
    return (np.clip(opacity, 0, 1) * level + 0.5).astype(np.uint8)


def _blur_line(values: np.ndarray, sigma: float) -> np.ndarray:
    """A 1-D near-Gaussian blur (three box passes of radius ~sigma), zeros beyond the ends."""
    return _box_passes(values, max(1, round(sigma)), 0)


def _box_passes(values: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """`_PASSES` box blurs of `radius` along `axis`, same shape, zeros beyond the ends (the callers pad
    enough room for the blur's reach). Running sums in float64: no drift along a long row."""
    window = 2 * radius + 1
    length = values.shape[axis]
    for _ in range(_PASSES):
        pad = [(0, 0)] * values.ndim
        pad[axis] = (radius + 1, radius)
        sums = np.cumsum(np.pad(values, pad), axis=axis, dtype=np.float64)
        ahead = np.take(sums, np.arange(window, window + length), axis=axis)
        behind = np.take(sums, np.arange(0, length), axis=axis)
        values = ((ahead - behind) / window).astype(np.float32)
    return values
