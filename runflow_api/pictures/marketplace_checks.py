"""Compliance flags for a marketplace file, judged on its bytes as written (decoded again), not on the
pixels before encoding: a JPEG encoder is what turns a white background into 254.

The flags have the shape of the QA flags (`qa.py`): a list of names in the order of `FLAGS`, never an
error; a file that fails a check is still written, and its flags go wherever QA flags go. What each one
means, precisely, is in docs/marketplace.md:

- `wrong_size`: the decoded canvas is not the preset's width x height;
- `wrong_format`: the bytes are not the preset's format;
- `over_cap`: the file is larger than the preset's cap (in bytes);
- `background`: a pixel outside the product's blocks (the product's and its shadow's, when the preset draws
  one) is not exactly the preset's colour. For a JPEG the
  blocks are the 8x8 blocks of the file's grid that hold any product pixel (alpha > 0 as placed): inside
  them JPEG's ringing is expected and not judged; for PNG and WebP (lossless) only the product's own
  pixels are left out. The canvas borders are always judged: the product keeps a margin of a block.
- `fill`: the share of the canvas the product's box spans along its limiting side is outside the preset's
  range;
- `cut_off`: the product reaches the canvas edge, or already reached the edge of the stored result (the
  service cut it, so the file shows a cut product);
- `enlarged`: the product was scaled up from the stored result (its pixels are stretched, not detail).

The product's extent (fill, cut_off, the blocks left out) comes from its alpha as placed on the canvas:
the file holds no alpha, and a white product on white is invisible in the pixels alone.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .marketplace_encode import PILLOW_FORMATS
from .marketplace_presets import Preset

FLAGS: tuple[str, ...] = ("wrong_size", "wrong_format", "over_cap", "background", "fill", "cut_off", "enlarged")
JPEG_BLOCK = 8  # px: with 4:4:4 sampling a JPEG codes each 8x8 block of each channel on its own


@dataclass(frozen=True)
class PlacedProduct:
    """Where the product is on the canvas: `alpha` (uint8, >0 is product) with its top-left corner."""

    left: int
    top: int
    alpha: np.ndarray

    @classmethod
    def from_canvas_mask(cls, mask: np.ndarray) -> PlacedProduct:
        """From a whole-canvas matte (uint8 0..255, or float 0..1 as ComfyUI's MASK): > 0 is product."""
        values = np.asarray(mask)
        product = values > 0
        return cls(0, 0, product.astype(np.uint8))


@dataclass(frozen=True)
class Measured:
    """What the checks read from a file; the JSON report shows these beside the flags."""

    width: int
    height: int
    format: str | None
    bytes: int
    fill: float
    background_off: int  # judged pixels that are not exactly the background colour
    touches_edge: bool
    enlarged: bool
    cut_at_source: bool

    def as_dict(self) -> dict[str, object]:
        return {"width": self.width, "height": self.height, "format": self.format, "bytes": self.bytes,
                "fill": round(self.fill, 4), "background_off": self.background_off}


def measure(data: bytes, preset: Preset, product: PlacedProduct, *, enlarged: bool = False,
            cut_at_source: bool = False, covered: PlacedProduct | None = None) -> Measured:
    """Decode `data` and measure it against `preset`; `enlarged` and `cut_at_source` come from the rendering.
    `covered`: where the product and its shadow are, when a shadow was drawn (left out of the background
    check; the fill and the edges are still the product's alone)."""
    with Image.open(io.BytesIO(data)) as image:
        fmt = image.format
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        width, height = rgb.size
        background_off = _background_off(rgb, preset.background, covered or product,
                                         JPEG_BLOCK if fmt == "JPEG" else 1)
    return Measured(width=width, height=height, format=fmt, bytes=len(data), fill=_fill(product, height, width),
                    background_off=background_off, touches_edge=_touches_edge(product, height, width),
                    enlarged=enlarged, cut_at_source=cut_at_source)


def _background_off(image: Image.Image, colour: tuple[int, int, int], product: PlacedProduct, block: int) -> int:
    """How many judged pixels of `image` are not exactly `colour`; judged: every pixel outside the `block`
    cells that hold product. One pass in Pillow's C code: the histogram of the judged pixels (a mask) is
    the colour alone exactly when each band's count of the colour's level is the number judged. Only a
    failing file is then compared pixel by pixel, to say how many are off."""
    width, height = image.size
    judged = Image.new("L", (width, height), 255)
    inner = _block_rectangle(product, height, width, block)
    if inner is not None:
        top, bottom, left, right = inner
        shifted = PlacedProduct(product.left - left, product.top - top, product.alpha)
        free = ~_product_blocks(shifted, bottom - top, right - left, block)
        cells = Image.fromarray(free.astype(np.uint8) * np.uint8(255), "L")
        grown = cells.resize((cells.width * block, cells.height * block), Image.Resampling.NEAREST)
        judged.paste(grown.crop((0, 0, right - left, bottom - top)), (left, top))
    counts = image.histogram(judged)
    total = sum(counts[:256])
    if all(counts[256 * band + level] == total for band, level in enumerate(colour)):
        return 0
    differs = (np.asarray(image) != np.asarray(colour, np.uint8)).any(axis=2)
    return int(np.count_nonzero(differs & (np.asarray(judged) > 0)))


def _block_rectangle(product: PlacedProduct, height: int, width: int, block: int) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the product's box grown to the block grid, within the canvas."""
    bounds = _bounds(product)
    if bounds is None:
        return None
    top, bottom, left, right = bounds
    top, left = max(top, 0) // block * block, max(left, 0) // block * block
    bottom, right = min(-(-bottom // block) * block, height), min(-(-right // block) * block, width)
    return (top, bottom, left, right) if bottom > top and right > left else None


def judge(measured: Measured, preset: Preset) -> list[str]:
    """The compliance flags of a measured file, in the order of `FLAGS`."""
    found = {
        "wrong_size": (measured.width, measured.height) != (preset.width, preset.height),
        "wrong_format": measured.format != PILLOW_FORMATS[preset.format],
        "over_cap": preset.cap is not None and measured.bytes > preset.cap,
        "background": measured.background_off > 0,
        "fill": not preset.fill_min <= measured.fill <= preset.fill_max,
        "cut_off": measured.touches_edge or measured.cut_at_source,
        "enlarged": measured.enlarged,
    }
    return [name for name in FLAGS if found[name]]


def check(data: bytes, preset: Preset, product: PlacedProduct, *, enlarged: bool = False,
          cut_at_source: bool = False, covered: PlacedProduct | None = None) -> tuple[list[str], Measured]:
    """(flags, measurements) of a file's bytes against its preset (`covered`: see `measure`)."""
    measured = measure(data, preset, product, enlarged=enlarged, cut_at_source=cut_at_source, covered=covered)
    return judge(measured, preset), measured


def _product_blocks(product: PlacedProduct, height: int, width: int, block: int) -> np.ndarray:
    """Which `block` x `block` cells of the canvas hold product (alpha > 0); parts beyond the canvas are
    dropped. Only the cells the product's array covers are computed."""
    cells = np.zeros((-(-height // block), -(-width // block)), bool)
    rows, cols = product.alpha.shape
    top, bottom = max(product.top, 0), min(product.top + rows, height)
    left, right = max(product.left, 0), min(product.left + cols, width)
    if bottom <= top or right <= left:
        return cells
    first_row, first_col = top // block, left // block  # the region grown to whole cells
    region = np.zeros(((-(-bottom // block) - first_row) * block, (-(-right // block) - first_col) * block), bool)
    region[top - first_row * block:bottom - first_row * block, left - first_col * block:right - first_col * block] = (
        product.alpha[top - product.top:bottom - product.top, left - product.left:right - product.left] > 0)
    found = _block_any(region, block)
    cells[first_row:first_row + found.shape[0], first_col:first_col + found.shape[1]] = found
    return cells


def _block_any(values: np.ndarray, block: int, *, channels: int = 1) -> np.ndarray:
    """Per `block` x `block` cell of the canvas grid (JPEG's blocks start at 0, 0): does it hold any
    non-zero value? `values` is (H, W * channels). Rows are folded first (a reduction along whole image
    rows, which numpy vectorises), then the short runs across each row of cells."""
    height, span = values.shape
    width = span // channels
    rows, cols = -(-height // block), -(-width // block)
    if (rows * block, cols * block) != (height, width):
        padded = np.zeros((rows * block, cols * block * channels), bool)
        padded[:height, :span] = values
        values = padded
    folded = np.logical_or.reduce(values.reshape(rows, block, cols * block * channels), axis=1)
    cells: np.ndarray = np.logical_or.reduce(folded.reshape(rows, cols, block * channels), axis=2)
    return cells


def _bounds(product: PlacedProduct) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of alpha > 0 on the canvas, exclusive ends; None with no product."""
    inside = product.alpha > 0
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if not len(rows):
        return None
    return (product.top + int(rows[0]), product.top + int(rows[-1]) + 1, product.left + int(cols[0]),
            product.left + int(cols[-1]) + 1)


def _fill(product: PlacedProduct, height: int, width: int) -> float:
    """The larger of the product box's height and width, as a share of the canvas's (0 with no product).
    The box is clipped to the canvas: a product beyond the edge is `cut_off`, not a larger fill."""
    bounds = _bounds(product)
    if bounds is None:
        return 0.0
    top, bottom, left, right = bounds
    spanned_rows = min(bottom, height) - max(top, 0)
    spanned_cols = min(right, width) - max(left, 0)
    return float(max(spanned_rows / height, spanned_cols / width, 0.0))


def _touches_edge(product: PlacedProduct, height: int, width: int) -> bool:
    bounds = _bounds(product)
    if bounds is None:
        return False
    top, bottom, left, right = bounds
    return top <= 0 or left <= 0 or bottom >= height or right >= width
