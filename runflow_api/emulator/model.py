"""The stand-in for `runflow/product-isolation`: a plausible, deterministic isolation with numpy and Pillow.

It is not a neural network, but its output has the properties the client and the nodes depend on: an RGBA
PNG of exactly the requested canvas, transparent background, an opaque product centred at about 85% of
the canvas, soft edges. The same input always gives the same bytes, so cache and dedupe tests can compare.

How: the background behind each pixel is blended from the four borders (a sweep lighter at the top, a wall
meeting a tabletop); the matte ramps smoothly with the colour distance from it (above the border's own
noise), so the product is opaque and only its rim soft; a box-blur neighbourhood test removes specks and fills
pinholes. The matte is estimated on a small working copy (it needs shape, not detail) and scaled back up.
An input that already has transparency brings its own matte. An input with an embedded colour profile is
converted to sRGB first, as a colour-managed service would (docs/RUNFLOW-API.md, "Colour"), so a URL
input's original bytes come back in the colours a user sees in the photo.
"""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from ..pictures import colour

MAX_INPUT_PIXELS = 8192 * 8192  # the service's decode limit; larger inputs fail instead of eating memory
INPUT_FORMATS = ("JPEG", "PNG", "WEBP")  # what the asset upload accepts (image/jpeg, image/png, image/webp)
PRODUCT_FILL = 0.85  # share of the canvas the product's longer side fills
MATTE_SIDE = 1024  # long side of the working copy the matte is estimated on
CHEAP_COLOUR = (128, 128, 128, 255)


class ModelInputError(Exception):
    """The input cannot be processed; `code` becomes the run's failure_code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _open(data: bytes) -> Image.Image:
    """Open (header only) and enforce the pixel limit before anything is decoded."""
    try:
        image = Image.open(io.BytesIO(data), formats=INPUT_FORMATS)
    except (Image.UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise ModelInputError("INPUT_DECODE_FAILED", f"The input is not a JPEG, PNG or WebP image ({exc}).") from exc
    width, height = image.size
    if width * height > MAX_INPUT_PIXELS:
        raise ModelInputError(
            "INPUT_TOO_LARGE",
            f"The input is {width}x{height} pixels; the limit is {MAX_INPUT_PIXELS} pixels.",
        )
    return image


def probe(data: bytes) -> None:
    """Check cheaply, when the run is created, that the input will decode: the run's fate is then known
    at creation, so billing and status never change after the fact."""
    _open(data)


def _decode(data: bytes, max_side: int) -> tuple[Image.Image, Image.Image | None]:
    """RGB image no larger than `max_side`, plus its own alpha when it has real transparency."""
    image = _open(data)
    image.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale when that is enough
    try:
        image = ImageOps.exif_transpose(image)
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = colour.to_srgb(image.convert("RGBA" if has_alpha else "RGB"))  # an embedded profile honoured
    except (OSError, ValueError) as exc:  # truncated or corrupt pixel data behind a valid header
        raise ModelInputError("INPUT_DECODE_FAILED", f"The input image is damaged ({exc}).") from exc
    image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    if not has_alpha:
        return image, None
    alpha = image.getchannel("A")
    own_matte = alpha if np.asarray(alpha).min() < 255 else None  # fully opaque alpha carries no matte
    return image.convert("RGB"), own_matte


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def box_blur(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 square via cumulative sums: O(pixels) whatever the radius, numpy only."""
    size = 2 * radius + 1
    padded: np.ndarray = np.pad(values.astype(np.float32), radius, mode="edge")
    for axis in (0, 1):
        sums = np.cumsum(padded, axis=axis, dtype=np.float32)
        zero = np.zeros_like(np.take(sums, [0], axis=axis))
        sums = np.concatenate([zero, sums], axis=axis)
        count = sums.shape[axis] - size
        padded = (np.take(sums, range(size, size + count), axis=axis) - np.take(sums, range(count), axis=axis)) / size
    return padded


def _running_median(profile: np.ndarray, window: int) -> np.ndarray:
    """The median of each `window` neighbours along a border (N x 3): a product that touches the frame
    over less than half a window does not pass for background there."""
    half = window // 2
    padded = np.pad(profile, ((half, half), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)  # N x 3 x window
    return np.median(windows, axis=2)


def background_model(pixels: np.ndarray, band: int) -> np.ndarray:
    """The background colour behind every pixel (HxWx3 float32), blended from the four borders (a Coons
    patch): a studio sweep lighter at the top than at the bottom, or a wall meeting a tabletop, is then
    background everywhere, where one colour for the whole frame would leave half of it in doubt and the
    product itself only partly opaque."""
    height, width = pixels.shape[:2]
    sides = [np.median(pixels[:band], axis=0), np.median(pixels[-band:], axis=0),
             np.median(pixels[:, :band], axis=1), np.median(pixels[:, -band:], axis=1)]
    top, bottom, left, right = (_running_median(side, max(3, len(side) // 3) | 1) for side in sides)
    u = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    v = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    corners = [(top[0] + left[0]) / 2, (top[-1] + right[0]) / 2, (bottom[0] + left[-1]) / 2,
               (bottom[-1] + right[-1]) / 2]
    blend = ((1 - v) * top[None] + v * bottom[None] + (1 - u) * left[:, None] + u * right[:, None]
             - ((1 - u) * (1 - v) * corners[0] + u * (1 - v) * corners[1] + (1 - u) * v * corners[2]
                + u * v * corners[3]))
    return blend.astype(np.float32)


def estimate_matte(rgb: np.ndarray) -> np.ndarray:
    """Alpha in 0..1 (float32, HxW) for an HxWx3 image whose border shows the background.

    The distance is to the background behind each pixel (`background_model`), and the ramp starts above
    the border's own noise around it: a product comes out opaque, with a soft rim where it meets the
    background. (Against one colour for the whole frame, a sweep's light fall-off counted as noise and
    left the product itself partly see-through.)"""
    height, width = rgb.shape[:2]
    pixels = rgb.astype(np.float32)
    band = max(1, min(height, width) // 50)
    distance = np.sqrt(((pixels - background_model(pixels, band)) ** 2).sum(axis=2))
    border = np.concatenate([distance[:band].ravel(), distance[-band:].ravel(), distance[:, :band].ravel(),
                             distance[:, -band:].ravel()])
    noise = float(np.percentile(border, 95))
    low = max(10.0, 1.5 * noise)
    alpha = _smoothstep((distance - low) / 20.0)
    neighbourhood = box_blur(alpha, max(2, min(height, width) // 100))
    alpha = alpha * _smoothstep((neighbourhood - 0.05) / 0.15)  # specks with little product around them go
    alpha = np.maximum(alpha, _smoothstep((neighbourhood - 0.75) / 0.2))  # pinholes inside the product fill
    return (alpha * _attached(alpha, neighbourhood)).astype(np.float32)


def _attached(alpha: np.ndarray, neighbourhood: np.ndarray, grid: int = 256) -> np.ndarray:
    """1 where the matte is connected to a product's solid core, else 0 (HxW float32): a faint haze on the
    backdrop (a light patch the borders cannot show) is not kept as product, while a low-contrast part of
    the product (a white sole on a light sweep) is. Grown on a grid of `grid` pixels a side."""
    height, width = alpha.shape
    scale = min(1.0, grid / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))

    def small(values: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(values.astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR))

    allowed = small(alpha) > 0.02
    reached = (small(neighbourhood) > 0.95) & allowed  # deep inside a solid region
    while True:
        grown = reached.copy()
        grown[1:] |= reached[:-1]
        grown[:-1] |= reached[1:]
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown &= allowed
        if np.array_equal(grown, reached):
            break
        reached = grown
    mask = Image.fromarray(reached.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))
    return np.asarray(mask.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0


def _encode(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)  # speed over size: this is a local server
    return out.getvalue()


def _place(rgb: Image.Image, matte: Image.Image, canvas: tuple[int, int]) -> bytes:
    """Crop to the product (plus a small margin), scale to fill PRODUCT_FILL of the canvas, centre it."""
    result = Image.new("RGBA", canvas, (0, 0, 0, 0))
    box = matte.point(lambda v: 255 if v >= 128 else 0).getbbox()
    if box is not None:
        left, top, right, bottom = box
        margin = max(1, round(0.02 * max(right - left, bottom - top)))
        box = (
            max(0, left - margin),
            max(0, top - margin),
            min(rgb.width, right + margin),
            min(rgb.height, bottom + margin),
        )
        product = rgb.convert("RGBA")
        product.putalpha(matte)
        product = product.crop(box)
        scale = PRODUCT_FILL * min(canvas[0] / product.width, canvas[1] / product.height)
        size = (max(1, round(product.width * scale)), max(1, round(product.height * scale)))
        product = product.resize(size, Image.Resampling.BICUBIC)  # Pillow premultiplies RGBA for this
        result.paste(product, ((canvas[0] - size[0]) // 2, (canvas[1] - size[1]) // 2))
    return _encode(result)


def isolate(data: bytes, canvas: tuple[int, int]) -> bytes:
    """The isolated product from encoded input bytes, as RGBA PNG bytes of exactly `canvas` (w, h)."""
    rgb, matte = _decode(data, max(canvas))
    if matte is None:
        small = rgb.copy()
        small.thumbnail((MATTE_SIDE, MATTE_SIDE), Image.Resampling.BILINEAR)
        alpha = estimate_matte(np.asarray(small))
        matte = Image.fromarray(np.round(alpha * 255).astype(np.uint8)).resize(rgb.size, Image.Resampling.BILINEAR)
    return _place(rgb, matte, canvas)


@functools.lru_cache(maxsize=32)
def flat_canvas(canvas: tuple[int, int]) -> bytes:
    """Cheap mode's result: a flat grey canvas of the right size, encoded once per size."""
    return _encode(Image.new("RGBA", canvas, CHEAP_COLOUR))


def output_variant(png: bytes, number: int) -> bytes:
    """Output `number` (1-based) of a run that returns several images: the first as rendered, each later
    one mirrored and a little darker, so tests can tell every returned image apart (even in cheap mode)."""
    if number <= 1:
        return png
    with Image.open(io.BytesIO(png)) as opened:
        image = ImageOps.mirror(opened.convert("RGBA"))
    factor = max(0.2, 1.0 - 0.15 * (number - 1))
    red, green, blue, alpha = image.split()
    darker = [band.point(lambda value: round(value * factor)) for band in (red, green, blue)]
    return _encode(Image.merge("RGBA", (*darker, alpha)))
