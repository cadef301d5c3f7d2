"""A marketplace preset's file from a stored result, free: no run is paid for it.

The product (the pixels with alpha > 0) is cut from the result once (`Product.of`, edges cleaned by
default), then for each preset scaled so its box spans the preset's fill along the limiting side,
centred, composited on the background, encoded within the cap (`marketplace_encode`) and checked on the
bytes as written (`marketplace_checks`). The composite touches only the product's box; the rest of the
canvas is the background colour as it is, so every pixel without product is exactly that colour before
encoding, and the checks prove it after.

A preset with a shadow (`Preset.shadow`, none by default) frames the product and its shadow together
(`shadows.place_framed`): the fill is still measured on the product alone, the pair is centred, and the
product shrinks only if the pair would not fit. The shadow is drawn under the product in a layer that
covers both, and composited with it; the checks then leave out the product's and the shadow's pixels
(and, in a JPEG, their blocks) and judge the rest of the background exact.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputRejected
from . import marketplace_checks, marketplace_encode, shadows
from .edges import EDGES_CLEAN, check_edges, decontaminate
from .marketplace_checks import Measured, PlacedProduct
from .marketplace_presets import Preset
from .qa import DEFAULT_THRESHOLDS
from .result_types import IsolationResult

MARGIN = marketplace_checks.JPEG_BLOCK  # px: the product never comes closer to an edge (one JPEG block)
# Bicubic, not Lanczos: its kernel is 2 px wide instead of 3, so each of the ~8 resizes of ten presets costs
# a third less (the largest cost of a rendering, benchmarks/marketplace.py), and at these reductions
# (0.25-1x) the two differ by less than JPEG quality 95 does.
_RESAMPLE = Image.Resampling.BICUBIC
_REDUCING_GAP = 3.0  # a large reduction starts with a box reduce: 2-4x faster, no visible difference
# A resize reads every pixel of its source, so a preset placing the product at under two thirds of another's
# size is scaled from that smaller rendering when one is at least this many times its size: the second
# reduction is then steep enough that its own filter, not the first one's slight softening, sets the detail
# (it differs from scaling straight from the product by less than JPEG's own encoding error: 54-57 dB over
# the samples' canvases; tests/test_marketplace.py checks it on a noisy worst case).
_CASCADE = 1.5


@dataclass(frozen=True)
class Product:
    """The product cut from a stored result, ready to be placed on any preset's canvas.

    `image` is RGBA (Pillow resizes RGBA with premultiplied colour, which keeps a dark fringe out of soft
    edges): the result cropped to the box of alpha > 0, which measured `box` px in the result itself.
    When every preset it is for needs fewer pixels, `image` is already reduced to the largest of them
    (`Product.of(..., largest=)`), so the edges are cleaned on fewer pixels and every later resize reads
    fewer. `cut_at_source` says the product reached the result's frame (the service cut it), so every file
    made from it is flagged `cut_off`."""

    image: Image.Image
    box: tuple[int, int]
    cut_at_source: bool
    edges: str

    @functools.cached_property
    def premultiplied(self) -> Image.Image:
        """`image` as RGBa, what every resize reads: Pillow would convert it once per resize (~15 ms for a
        2 Mpx product, each of up to ten presets), here once for all of them."""
        return self.image.convert("RGBa")

    @classmethod
    def of(cls, source: IsolationResult | Image.Image | np.ndarray, *, edges: str = EDGES_CLEAN,
           presets: list[Preset] | None = None) -> Product:
        """The product of a result, an RGBA PIL image or an HxWx4 uint8 array (straight alpha). An image
        without alpha is all product. Edges are cleaned (`edges.decontaminate`) unless 'as returned'.
        `presets`: the presets it will be placed on, when known (it is then reduced to the largest, so
        render it on those presets only: a larger one would be scaled up from the reduced copy)."""
        check_edges(edges)
        rgba = _rgba_image(source)
        alpha = rgba.getchannel("A")
        bounds = alpha.getbbox()  # Pillow's C scan: a 4K result is never copied into numpy whole
        if bounds is None:
            raise InputRejected("The result holds no product (its alpha is 0 everywhere), so there is nothing to "
                                "place on a marketplace canvas. Look at the cut-out; run it again with a prompt "
                                "naming the product.")
        left, top, right, bottom = bounds
        box = (right - left, bottom - top)
        image = rgba.crop(bounds)
        largest = _largest(box, presets or [])
        if largest is not None and largest[0] < box[0] and largest[1] < box[1]:
            image = image.resize(largest, _RESAMPLE, reducing_gap=_REDUCING_GAP)
        if edges == EDGES_CLEAN:
            image = Image.fromarray(decontaminate(np.asarray(image)), "RGBA")
        return cls(image, box, _reaches_frame(alpha), edges)


@dataclass(frozen=True)
class Placement:
    """The product's box on the canvas and the scale from the stored result to it."""

    left: int
    top: int
    width: int
    height: int
    scale: float

    @property
    def enlarged(self) -> bool:
        return self.scale > 1.0


@dataclass
class Rendering:
    """One preset's file: its bytes, where the product went, the JPEG quality used and the checks' verdict."""

    preset: Preset
    data: bytes
    quality: int | None
    placement: Placement
    product: PlacedProduct
    flags: list[str]
    measured: Measured

    @property
    def extension(self) -> str:
        return self.preset.extension

    def report(self) -> dict[str, Any]:
        """The JSON report's entry for this file."""
        return {"preset": self.preset.name, "flags": list(self.flags), "quality": self.quality,
                "scale": round(self.placement.scale, 4), **self.measured.as_dict()}


def place(product_size: tuple[int, int], preset: Preset, shadow: shadows.Box | None = None) -> Placement:
    """Scale and position: the limiting side spans the preset's fill (kept a MARGIN from the edges), the
    other keeps the product's proportions; centred. With `shadow` (the box its shadow reaches, in the same
    pixels as `product_size`, from the product's top-left corner), product and shadow are centred together
    and the product shrinks only as far as the pair needs to fit within the margins."""
    width, height = product_size
    span_x = min(preset.fill * preset.width, preset.width - 2 * MARGIN)
    span_y = min(preset.fill * preset.height, preset.height - 2 * MARGIN)
    scale = min(span_x / width, span_y / height)
    if shadow is not None:
        inner = (preset.width - 2 * MARGIN, preset.height - 2 * MARGIN)
        framed = shadows.place_framed((0, 0, width, height), shadow, inner, scale)
        placed_w, placed_h = max(1, round(width * framed.scale)), max(1, round(height * framed.scale))
        return Placement(MARGIN + round(framed.left), MARGIN + round(framed.top), placed_w, placed_h,
                         max(placed_w / width, placed_h / height))
    placed_w = max(1, min(round(width * scale), preset.width - 2 * MARGIN))
    placed_h = max(1, min(round(height * scale), preset.height - 2 * MARGIN))
    return Placement((preset.width - placed_w) // 2, (preset.height - placed_h) // 2, placed_w, placed_h,
                     max(placed_w / width, placed_h / height))


def _placement(product: Product, preset: Preset) -> Placement:
    """`place` for a product cut from a result: with the preset's shadow, measured on the product's matte
    (the shadow's lengths scale with the product, so its box scales from `image`'s pixels to `box`'s)."""
    if not preset.shadow.draws:
        return place(product.box, preset)
    reach = shadows.drawn_box(np.asarray(product.image.getchannel("A")), preset.shadow)
    if reach is None:
        return place(product.box, preset)
    factor_x, factor_y = product.box[0] / product.image.width, product.box[1] / product.image.height
    scaled = (round(reach[0] * factor_x), round(reach[1] * factor_y), round(reach[2] * factor_x),
              round(reach[3] * factor_y))
    return place(product.box, preset, scaled)


def render(source: Product | IsolationResult | Image.Image | np.ndarray, preset: Preset, *,
           edges: str = EDGES_CLEAN) -> Rendering:
    """`preset`'s file from a stored result (or a `Product` already cut from one, to render several
    presets without cutting it again)."""
    product = source if isinstance(source, Product) else Product.of(source, edges=edges, presets=[preset])
    placement = _placement(product, preset)
    return _rendered(product, preset, placement, _scaled(product, placement))


def _scaled(product: Product, placement: Placement) -> Image.Image:
    if product.image.size == (placement.width, placement.height):
        return product.image
    return _resized(product.premultiplied, (placement.width, placement.height)).convert("RGBA")


def _resized(premultiplied: Image.Image, size: tuple[int, int]) -> Image.Image:
    """An RGBa image at `size`, as Pillow resizes an RGBA one (premultiplied, so no dark fringe), without
    converting to and from RGBa around each resize."""
    return premultiplied.resize(size, _RESAMPLE, reducing_gap=_REDUCING_GAP)


def render_with_canvas(product: Product, preset: Preset) -> tuple[Rendering, Image.Image]:
    """`render`, and the canvas it encoded (RGB): what the ComfyUI node outputs, for a save node to
    encode and check again, with the flags its file will carry."""
    placement = _placement(product, preset)
    return _rendered_canvas(product, preset, placement, _scaled(product, placement))


def _canvas(preset: Preset, placement: Placement, scaled: Image.Image) -> tuple[Image.Image, PlacedProduct | None]:
    """The canvas before encoding, and where product and shadow together cover it (None without a shadow)."""
    canvas = Image.new("RGB", (preset.width, preset.height), preset.background)
    layer, left, top = scaled, placement.left, placement.top
    if preset.shadow.draws:
        layer, left, top = _shadowed_layer(preset, placement, scaled)
    # Straight colour over the background through the alpha: (colour x a + background x (255 - a)) / 255 in
    # Pillow's C loop, so alpha 0 leaves the background exactly as it is and alpha 255 is the product.
    canvas.paste(layer, (left, top), layer)
    covered = PlacedProduct(left, top, np.asarray(layer.getchannel("A"))) if layer is not scaled else None
    return canvas, covered


def _shadowed_layer(preset: Preset, placement: Placement, scaled: Image.Image) -> tuple[Image.Image, int, int]:
    """The scaled product with its shadow drawn under it on a transparent layer with room for all of the
    shadow (so it is drawn whole, as `_placement` measured it), cropped to the canvas, and the layer's
    top-left corner on the canvas."""
    reach = shadows.framed_box((0, 0, scaled.width, scaled.height),
                               shadows.shadow_box(np.asarray(scaled.getchannel("A")), preset.shadow))
    layer = Image.new("RGBA", (reach[2] - reach[0], reach[3] - reach[1]), (0, 0, 0, 0))
    layer.paste(scaled, (-reach[0], -reach[1]))
    shadowed = Image.fromarray(shadows.add_shadow(np.asarray(layer), preset.shadow), "RGBA")
    left, top = placement.left + reach[0], placement.top + reach[1]
    window = (max(0, -left), max(0, -top), min(layer.width, preset.width - left),
              min(layer.height, preset.height - top))
    return shadowed.crop(window), max(0, left), max(0, top)


def covered_on_canvas(mask: np.ndarray, preset: Preset) -> PlacedProduct | None:
    """Where the product (`mask`: its alpha on the whole canvas, uint8) and the preset's shadow cover the
    canvas, for checking a canvas rendered elsewhere (the ComfyUI save node): the shadow is drawn from the
    product's matte alone, whole as the renderer draws it, so it can be drawn again here. None when the
    preset draws no shadow."""
    whole = shadows.render_whole(mask, preset.shadow)
    if whole is None:
        return None
    (left, top, right, bottom), shade = whole
    height, width = mask.shape
    window = (max(0, left), max(0, top), min(width, right), min(height, bottom))
    covered = mask.copy()
    if window[2] > window[0] and window[3] > window[1]:
        region = covered[window[1]:window[3], window[0]:window[2]]
        np.maximum(region, shade[window[1] - top:window[3] - top, window[0] - left:window[2] - left], out=region)
    return PlacedProduct(0, 0, covered)


def _rendered(product: Product, preset: Preset, placement: Placement, scaled: Image.Image) -> Rendering:
    return _rendered_canvas(product, preset, placement, scaled)[0]


def _rendered_canvas(product: Product, preset: Preset, placement: Placement, scaled: Image.Image
                     ) -> tuple[Rendering, Image.Image]:
    canvas, covered = _canvas(preset, placement, scaled)
    encoded = marketplace_encode.encode(canvas, preset.format, preset.cap)
    alpha = np.asarray(scaled.getchannel("A"))
    placed = PlacedProduct(placement.left, placement.top, alpha)
    flags, measured = marketplace_checks.check(encoded.data, preset, placed, enlarged=placement.enlarged,
                                               cut_at_source=product.cut_at_source, covered=covered)
    return Rendering(preset, encoded.data, encoded.quality, placement, placed, flags, measured), canvas


def render_all(source: Product | IsolationResult | Image.Image | np.ndarray, presets: list[Preset], *,
               edges: str = EDGES_CLEAN) -> list[Rendering]:
    """Every preset's file from one stored result. The product is cut once, reduced once to the largest
    size any preset needs (when all need fewer pixels than the result has), its edges cleaned once there;
    presets that place it at the same size, or one pixel smaller, share one resize, and a small size is
    scaled from a larger rendering rather than from the product (`_CASCADE`)."""
    if not isinstance(source, Product):
        source = Product.of(source, edges=edges, presets=presets)
    product = source
    placements = _sharing([_placement(product, preset) for preset in presets], product.box)
    premultiplied: dict[tuple[int, int], Image.Image] = {}
    scaled: dict[tuple[int, int], Image.Image] = {}
    for size in sorted({(placement.width, placement.height) for placement in placements}, reverse=True):
        if size == product.image.size:
            scaled[size] = product.image
            continue
        larger = [image for image in premultiplied.values()
                  if image.width >= _CASCADE * size[0] and image.height >= _CASCADE * size[1]]
        premultiplied[size] = _resized(min(larger, key=lambda image: image.width) if larger
                                       else product.premultiplied, size)
        scaled[size] = premultiplied[size].convert("RGBA")
    return [_rendered(product, preset, placement, scaled[(placement.width, placement.height)])
            for preset, placement in zip(presets, placements, strict=True)]


def _sharing(placements: list[Placement], box: tuple[int, int]) -> list[Placement]:
    """Each placement at the smallest size among them that is at most one pixel smaller on each side (often
    its own): Amazon's 1740 px and Shopify's 1740.8 -> 1741 px become one resize. The product then sits half
    a pixel off-centre and its fill moves by under 0.1 % of the canvas, far inside every preset's range;
    never larger, so no product is enlarged or brought closer to the edge by it."""
    sizes = {(placement.width, placement.height) for placement in placements}
    shared = []
    for placement in placements:
        width, height = min((size for size in sizes if 0 <= placement.width - size[0] <= 1
                             and 0 <= placement.height - size[1] <= 1), key=lambda size: size[0] * size[1])
        shared.append(replace(placement, left=placement.left + (placement.width - width + 1) // 2,
                              top=placement.top + (placement.height - height + 1) // 2, width=width, height=height,
                              scale=max(width / box[0], height / box[1])))
    return shared


def _largest(box: tuple[int, int], presets: list[Preset]) -> tuple[int, int] | None:
    """The largest size the product is placed at among `presets` (None without presets)."""
    placements = [place(box, preset) for preset in presets]
    if not placements:
        return None
    return max(placement.width for placement in placements), max(placement.height for placement in placements)


def _rgba_image(source: IsolationResult | Image.Image | np.ndarray) -> Image.Image:
    if isinstance(source, IsolationResult):
        source = source.image
    if isinstance(source, Image.Image):
        return source if source.mode == "RGBA" else source.convert("RGBA")
    if isinstance(source, np.ndarray) and source.dtype == np.uint8 and source.ndim == 3 and source.shape[2] == 4:
        return Image.fromarray(source, "RGBA")
    what = f"{source.dtype} array of shape {source.shape}" if isinstance(source, np.ndarray) else type(source).__name__
    raise InputRejected(f"A marketplace file is rendered from a result, an RGBA image or an HxWx4 uint8 array, "
                        f"got a {what}. Pass the IsolationResult the client returned.")


def _reaches_frame(alpha: Image.Image) -> bool:
    """The product (alpha >= 0.5) lies on more than the QA flags' share of a border line of the result:
    the same rule as `qa`'s cut_off, so a speck of a few pixels at the frame is no cut."""
    width, height = alpha.size
    borders = ((0, 0, width, 1), (0, height - 1, width, height), (0, 0, 1, height), (width - 1, 0, width, height))
    lines = [np.asarray(alpha.crop(box)).ravel() for box in borders]
    threshold = DEFAULT_THRESHOLDS.product * 255
    return any(float((line >= threshold).mean()) > DEFAULT_THRESHOLDS.cut_off_above for line in lines)
