"""The cut-out on the input's own canvas: where, and at what scale, a result's product sits in its photo.

The service returns the product re-framed (cropped, scaled, centred on a new canvas, perhaps re-rendered)
and does not say where it took it from, so the mapping is found from the pixels. The result's alpha gives
the product's box in the result and a weight for every pixel of it; the product is then looked for in the
photo by weighted normalised cross-correlation (NCC) of grey levels, which ignores a change of
brightness and contrast, so a colour-shifted, blurred or sharpened re-render still matches:

1. coarse: the photo at `COARSE_SIDE` px on its long side, every scale from a product `MIN_PRODUCT_SHARE`
   of the photo's long side to one filling the photo, in steps of `COARSE_STEP`; each scale's NCC at every
   position in one FFT correlation (numpy's FFT: nothing to install);
2. refine: the region of the photo around the coarse answer, at the size that makes the product
   `FINE_PRODUCT_PX` long, three scales `FINE_STEP` apart (again further out while the best is the first
   or the last), then three a third of that apart. Peaks are refined below a pixel, and between scales,
   by parabolas through the neighbouring scores.

Only a scale and a shift are looked for: the service neither rotates nor mirrors the product. The score
is the best NCC of step 2 (0..1); below `MIN_SCORE` the product is not placed. The alpha is then mapped
back with one antialiased resize of the product's region onto the photo's canvas. The photo is read as
the upload read it (`images.to_array`: EXIF orientation applied), so the mask lines up with what was sent.

A product of one flat colour has nothing inside to correlate. When the product's own pixels do not place
it, the search runs again on its outline: the template gets a ring of background around the product
(`RING`, weighted `RING_WEIGHT`), the grey of the photo's border, and the photo is padded with that grey
so a product at the frame still fits; kept when it scores better.

Speed (benchmarks/placement.py, docs/mask-on-input.md): the search costs the same for any photo size
(both steps work at fixed sizes); what grows with the photo is reading it, one grey conversion and the
mask itself. 97-157 ms of CPU for a 2K photo on one core of this 2-core machine at load 5-15.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image, ImageChops

from ..errors import InputRejected
from . import images
from .result_types import ImageURL, IsolationResult

COARSE_SIDE = 128  # px, the photo's long side for the search over every scale and position
FINE_PRODUCT_PX = 200  # px, the product's long side in the refinement (finer costs more, gains little IoU)
COARSE_STEP = 1.1  # ratio between neighbouring scales of the coarse search
FINE_STEP = 1.04  # ratio between the refinement's three scales (then a third of it, three scales again)
MIN_PRODUCT_SHARE = 0.06  # the smallest product looked for: 6% of the photo's long side
MIN_TEMPLATE_PX = 8  # ... and never below this many px at the coarse size (too few to match)
MIN_TEMPLATE_AREA = 120  # px of product (alpha-weighted) a template needs: a few dozen match anything somewhere
CANDIDATES = 3  # coarse matches refined (the scales where the coarse score peaks, best first) ...
RING = 0.06  # the outline search's ring of background, as a share of the product's long side ...
RING_WEIGHT = 0.5  # ... and its weight beside the product's pixels (the photo's background is only estimated)
CANDIDATE_MARGIN = 0.15  # ... those within this of the best coarse score (a clean match stands out alone)
# NCC below this: not placed. Measured on emulator results: placed products 0.97-0.99 (blurred and
# colour-shifted too), an unrelated photo 0.2-0.3, the same product upside down 0.64 (a part of it matches).
MIN_SCORE = 0.75
PRODUCT_ALPHA = 0.5  # result alpha at or above this is product (its box; the placed mask's box)
VISIBLE_ALPHA = 0.02  # result alpha above this is part of the product's soft edge
_FLAT = (2.0 / 255.0) ** 2  # a photo window whose grey varies less than this (per pixel) matches nothing
UNPLACED = "unplaced"


@dataclass(frozen=True)
class Placement:
    """Where a result's product sits on its input photo.

    `mask`: HxW float32 in 0..1 at the input's size, 1 = product (alpha polarity, like the nodes' `mask`;
    LoadImage's mask is the opposite), or None when the product could not be placed (`reason` says why).
    `box`: (x, y, width, height) of the product in the input, in pixels. `score`: 0..1, how well the
    product matched (the normalised cross-correlation of its grey levels). `scale`: input pixels per
    result pixel. `rgba`: the input's own pixels with `mask` as alpha, HxWx4 uint8: the photo's product,
    untouched and exactly in place (the result's re-rendered pixels may differ in colour and detail)."""

    mask: np.ndarray | None
    box: tuple[int, int, int, int] | None
    score: float
    scale: float | None = None
    reason: str | None = None
    pixels: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def placed(self) -> bool:
        return self.mask is not None

    @property
    def rgba(self) -> np.ndarray | None:
        """The input's RGB with `mask` as its alpha (computed on use: 16 MB for a 2K photo)."""
        if self.mask is None or self.pixels is None:
            return None
        out = np.empty((*self.mask.shape, 4), np.uint8)
        out[..., :3] = self.pixels[..., :3]
        out[..., 3] = np.round(self.mask * 255).astype(np.uint8)
        return out


def place_on_input(image: Any, result: Any, *, min_score: float = MIN_SCORE) -> Placement:
    """The result's product mapped back onto its input photo (see the module's docstring for how).

    `image`: the input as isolate() took it: a path, PIL image, numpy array or encoded bytes (a URL is
    refused: pass the downloaded image, or `client.read_input(url)`). `result`: the IsolationResult of
    that input (or its RGBA image as a PIL image or array). When the product cannot be placed, the
    placement's `mask` is None with a `reason`, and an IsolationResult whose matte shows a product gets
    the QA flag `unplaced` (docs/qa.md); nothing fails."""
    if isinstance(image, ImageURL) or (isinstance(image, str) and image.strip().lower().startswith(("http://", "https://"))):
        raise InputRejected("image is a URL: place_on_input needs the photo's pixels. Download it and pass the "
                            "file, PIL image or array (the URL node does this for you).")
    pixels = images.to_array(image, name="image")
    cutout = _result_image(result)
    placement = locate(pixels, cutout, min_score=min_score)
    # A hint, like every QA flag: nothing fails because of it. Not for a result with no product to place
    # (no alpha: no matte and no flags; an empty matte is flagged `empty` already).
    if (not placement.placed and isinstance(result, IsolationResult) and "A" in cutout.getbands()
            and "empty" not in result.flags):
        result.add_flag(UNPLACED)
    return placement


def _result_image(result: Any) -> Image.Image:
    """The result's first image as PIL RGBA; a result without alpha has no product to place."""
    picture = result.image if isinstance(result, IsolationResult) else result
    if isinstance(picture, np.ndarray):
        picture = Image.fromarray(images.to_array(picture, name="result"))
    if not isinstance(picture, Image.Image):
        raise InputRejected(f"result is a {type(result).__name__}; pass the IsolationResult isolate() returned "
                            "(or its RGBA image).")
    return picture


def locate(pixels: np.ndarray, cutout: Image.Image, *, min_score: float = MIN_SCORE) -> Placement:
    """The placement of `cutout` (an RGBA result) on `pixels` (the input as uint8 HxWx3 or HxWx4)."""
    height, width = pixels.shape[:2]
    if "A" not in cutout.getbands():
        return Placement(None, None, 0.0, reason="the result has no alpha channel (composited on a colour), so "
                         "there is no product to place; place the transparent result")
    product = _Product.of(cutout)
    if product is None:
        return Placement(None, None, 0.0, reason="the result's matte is empty: there is no product to place")
    photo = Image.fromarray(np.ascontiguousarray(pixels[..., :3])).convert("L")
    fine = _search(photo, product)
    if fine is None or fine.score < min_score:
        product, fine = _search_outline(photo, product, fine)
    if fine is None:
        return Placement(None, None, 0.0, reason="the product has too little texture to be found in the photo "
                         "(one flat colour) or is larger than the photo")
    if fine.score < min_score:
        score = fine.score
        return Placement(None, None, round(score, 3), reason=(
            f"the product was not found in the photo (best match {score:.2f}, at least {min_score:.2f} "
            "needed): is this the photo the result was made from?"))
    mask = _mapped_alpha(product, fine, (width, height))
    found = _bbox(mask >= PRODUCT_ALPHA)
    if found is None:
        return Placement(None, None, round(fine.score, 3), reason="the product maps outside the photo")
    left, top, right, bottom = found
    return Placement(mask, (left, top, right - left, bottom - top), round(fine.score, 3),
                     scale=fine.scale, pixels=pixels)


# -- the product, as the result shows it ---------------------------------------------------------------


@dataclass(frozen=True)
class _Product:
    """The result's product: its grey levels (premultiplied by alpha) and alpha, cropped to the soft
    product (plus a pixel), and the box (left, top, width, height) of the soft product in that crop.
    Premultiplied, so that resizing never mixes the colour of transparent pixels (black, or anything)
    into the product's rim. `pyramid` holds the two planes halved again and again, to resize each
    template from a picture near its size: resizing from the full result every time would cost more than
    the whole search."""

    grey: Image.Image
    alpha: Image.Image
    box: tuple[int, int, int, int]
    pyramid: list[tuple[Image.Image, Image.Image]] = field(default_factory=list, compare=False)
    background: float | None = None  # with a ring: the grey (0..1) the product is set on in the template

    @classmethod
    def of(cls, cutout: Image.Image) -> _Product | None:
        alpha = cutout.getchannel("A")
        values = np.asarray(alpha)
        visible = _bbox(values > VISIBLE_ALPHA * 255)
        if visible is None or _bbox(values >= PRODUCT_ALPHA * 255) is None:
            return None
        left, top, right, bottom = visible
        crop = (max(0, left - 1), max(0, top - 1), min(cutout.width, right + 1), min(cutout.height, bottom + 1))
        box = (left - crop[0], top - crop[1], right - left, bottom - top)
        alpha = alpha.crop(crop)
        return cls(ImageChops.multiply(cutout.crop(crop).convert("L"), alpha), alpha, box)

    def template(self, scale_x: float, scale_y: float) -> tuple[np.ndarray, np.ndarray]:
        """(grey 0..1, weight 0..1) of the product at `scale_x` x `scale_y` working px per result px."""
        left, top, width, height = self.box
        size = (max(1, math.ceil(width * scale_x)), max(1, math.ceil(height * scale_y)))
        level = max(0, int(math.log2(1 / (2 * max(scale_x, scale_y)))))  # at least 2 source px per template px
        grey, alpha, factor = self._level(level)
        box = (left / factor, top / factor, min(grey.width, (left + size[0] / scale_x) / factor),
               min(grey.height, (top + size[1] / scale_y) / factor))
        premultiplied, weight = (np.asarray(plane.resize(size, Image.Resampling.BILINEAR, box=box), np.float64) / 255
                                 for plane in (grey, alpha))
        if self.background is None:
            return premultiplied / np.maximum(weight, 1 / 255), weight
        return premultiplied + (1 - weight) * self.background, weight + (1 - weight) * RING_WEIGHT

    def with_ring(self, background: float) -> _Product:
        """The product with a ring of background around it (`RING` of its long side), its box grown to
        hold it: the template then shows the product's outline against `background`, which a product of
        one flat colour can be found by."""
        left, top, width, height = self.box
        pad = math.ceil(RING * max(width, height))
        grey = Image.new("L", (self.grey.width + 2 * pad, self.grey.height + 2 * pad), 0)
        alpha = Image.new("L", grey.size, 0)
        grey.paste(self.grey, (pad, pad))
        alpha.paste(self.alpha, (pad, pad))
        return _Product(grey, alpha, (left, top, width + 2 * pad, height + 2 * pad), background=background)

    def _level(self, level: int) -> tuple[Image.Image, Image.Image, int]:
        """The planes halved `level` times (fewer for a tiny product) and how many source px one holds."""
        if not self.pyramid:
            self.pyramid.append((self.grey, self.alpha))
        while len(self.pyramid) <= level and min(self.pyramid[-1][0].size) >= 2:
            grey, alpha = self.pyramid[-1]
            self.pyramid.append((grey.reduce(2), alpha.reduce(2)))
        level = min(level, len(self.pyramid) - 1)
        return (*self.pyramid[level], 2**level)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the True pixels, right and bottom exclusive; None when there are none."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


# -- the search ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Match:
    """A product found at `scale` input px per result px, its centre at (`x`, `y`) in input px."""

    score: float
    scale: float
    x: float
    y: float
    at_edge: bool = False  # the best of its run of scales was the first or the last


class _Plane:
    """A region of the photo (`box`, input px; the whole photo by default) at `scale` working px per input
    px: `values` in 0..1, `sx`, `sy` the exact ratios per axis, `left`, `top` the region's corner."""

    def __init__(self, photo: Image.Image, scale: float, box: tuple[int, int, int, int] | None = None) -> None:
        left, top, right, bottom = box or (0, 0, photo.width, photo.height)
        ratio = min(1.0, scale)
        size = (max(1, round((right - left) * ratio)), max(1, round((bottom - top) * ratio)))
        if size == (right - left, bottom - top):
            small = photo.crop((left, top, right, bottom)) if box else photo
        else:
            small = photo.resize(size, Image.Resampling.BILINEAR, box=(left, top, right, bottom), reducing_gap=2.0)
        self.values = np.asarray(small, np.float64) / 255
        self.sx, self.sy = size[0] / (right - left), size[1] / (bottom - top)
        self.left, self.top = left, top


def _fast_length(size: int) -> int:
    """The smallest 2^a 3^b 5^c at or above `size`: numpy's FFT is many times slower on a prime length."""
    best = 2 * size
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            length = power35
            while length < size:
                length *= 2
            best = min(best, length)
            power35 *= 3
        power5 *= 5
    return best


def _correlate(window: np.ndarray, spectra: tuple[np.ndarray, np.ndarray], grey: np.ndarray,
               weight: np.ndarray) -> np.ndarray | None:
    """Weighted NCC of the template (`grey`, `weight`) at every position where it fits inside `window`
    (indexed by its top-left corner), or None for a featureless template. `spectra`: the FFTs of the
    window and of its square."""
    total = weight.sum()
    if total < MIN_TEMPLATE_AREA:
        return None  # a few pixels match something anywhere
    mean = (weight * grey).sum() / total
    centred = weight * (grey - mean)
    energy = (centred * (grey - mean)).sum()
    if energy < _FLAT * total:
        return None
    shape = _fft_shape(window)
    f_centred = np.conj(np.fft.rfft2(centred, s=shape))
    f_weight = np.conj(np.fft.rfft2(weight, s=shape))
    rows, cols = window.shape[0] - grey.shape[0] + 1, window.shape[1] - grey.shape[1] + 1
    numerator = np.fft.irfft2(f_centred * spectra[0], s=shape)[:rows, :cols]
    first = np.fft.irfft2(f_weight * spectra[0], s=shape)[:rows, :cols]
    second = np.fft.irfft2(f_weight * spectra[1], s=shape)[:rows, :cols]
    variance = second - first * first / total
    flat = variance < _FLAT * total
    ncc = numerator / np.sqrt(energy * np.maximum(variance, _FLAT * total))
    ncc[flat] = 0.0
    return ncc


def _fft_shape(window: np.ndarray) -> tuple[int, int]:
    """The window zero-padded to fast lengths: positions where the template fits never wrap around."""
    return _fast_length(window.shape[0]), _fast_length(window.shape[1])


def _spectra(window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    shape = _fft_shape(window)
    return np.fft.rfft2(window, s=shape), np.fft.rfft2(window * window, s=shape)


def _search_outline(photo: Image.Image, product: _Product, found: _Match | None) -> tuple[_Product, _Match | None]:
    """When the product's own pixels did not place it (one flat colour, or too little print): look again
    with its outline against the photo's background (the median of its border), the photo padded with
    that background so that a product at the frame still fits. Kept only when it scores better."""
    values = np.asarray(photo.reduce(max(1, max(photo.size) // 256)), np.float64) / 255
    background = float(np.median(np.concatenate([values[0], values[-1], values[:, 0], values[:, -1]])))
    ringed = product.with_ring(background)
    margin = math.ceil(RING * max(photo.size) * 1.2)
    padded = Image.new("L", (photo.width + 2 * margin, photo.height + 2 * margin), round(background * 255))
    padded.paste(photo, (margin, margin))
    match = _search(padded, ringed)
    if match is None or (found is not None and match.score <= found.score):
        return product, found
    return ringed, replace(match, x=match.x - margin, y=match.y - margin)


def _search(photo: Image.Image, product: _Product) -> _Match | None:
    """Coarse over every scale; its best `CANDIDATES` (peaks across scales) refined, the best refined
    kept. None when the product has no texture."""
    coarse_plane = _Plane(photo, COARSE_SIDE / max(photo.size))
    slack = 3 + 2 / coarse_plane.sx  # input px: two coarse px and a little
    refined = [_refine_near(photo, product, match, slack) for match in _search_coarse(photo, coarse_plane, product)]
    match = max((match for match in refined if match is not None), key=lambda match: match.score, default=None)
    if match is None:
        return None
    closer = _refine(photo, product, match, step=FINE_STEP ** (1 / 3), reach=1, slack=4)
    return closer if closer is not None and closer.score >= match.score - 0.01 else match


def _refine_near(photo: Image.Image, product: _Product, match: _Match | None, slack: float) -> _Match | None:
    """A coarse match refined `FINE_STEP` apart (again where the best was at an end of the run, at most
    twice); the best candidate is then refined a third of that step apart (`_search`)."""
    for attempt in range(3):
        if match is None:
            return None
        match = _refine(photo, product, match, step=FINE_STEP, reach=1, slack=slack if attempt == 0 else 6)
        if match is None or not match.at_edge:
            break
    return match


def _search_coarse(photo: Image.Image, plane: _Plane, product: _Product) -> list[_Match | None]:
    """Every scale at every position on the small photo; the best matches of the scales where the score
    peaks (best first, at most `CANDIDATES`), each scale refined by a parabola. Several, because a small
    template of the wrong scale can match a part of the photo a little better than the right scale, at
    this size, matches the whole: the refinement tells them apart."""
    rows, cols = plane.values.shape
    _, _, width, height = product.box
    largest = min(photo.width / width, photo.height / height)  # the product fills the photo one way
    smallest = max(MIN_PRODUCT_SHARE * max(photo.size), MIN_TEMPLATE_PX / min(plane.sx, plane.sy)) / max(width, height)
    smallest = min(smallest, largest)
    count = max(1, int(math.log(largest / smallest) / math.log(COARSE_STEP)) + 1)
    spectra = _spectra(plane.values)
    found: list[_Match | None] = []
    for step in range(count):
        scale = largest / COARSE_STEP**step
        grey, weight = product.template(scale * plane.sx, scale * plane.sy)
        if grey.shape[0] > rows or grey.shape[1] > cols:
            found.append(None)
            continue
        ncc = _correlate(plane.values, spectra, grey, weight)
        found.append(None if ncc is None else _peak(ncc, scale, product, plane))
    peaks = [index for index, match in enumerate(found) if match is not None
             and all(other is None or other.score <= match.score for other in found[max(0, index - 1) : index + 2])]
    peaks.sort(key=lambda index: -found[index].score)  # type: ignore[union-attr]
    near = [index for index in peaks[:CANDIDATES] if found[index].score >= found[peaks[0]].score - CANDIDATE_MARGIN]  # type: ignore[union-attr]
    return [_best_across_scales(found, 1 / COARSE_STEP, around=index) for index in near]


def _refine(photo: Image.Image, product: _Product, start: _Match, *, step: float, reach: int,
            slack: float) -> _Match | None:
    """`2 * reach + 1` scales `step` apart around `start`, on the region of the photo that holds the
    largest of them `slack` input px beyond where `start` puts it either way, at the size that makes the
    product `FINE_PRODUCT_PX` long: the same cost and the same relative precision for any photo."""
    _, _, width, height = product.box
    largest = start.scale * step**reach
    half_w, half_h = width * largest / 2 + slack, height * largest / 2 + slack
    box = (max(0, math.floor(start.x - half_w)), max(0, math.floor(start.y - half_h)),
           min(photo.width, math.ceil(start.x + half_w)), min(photo.height, math.ceil(start.y + half_h)))
    plane = _Plane(photo, FINE_PRODUCT_PX / (max(width, height) * start.scale), box)
    spectra = _spectra(plane.values)
    found: list[_Match | None] = []
    for power in range(-reach, reach + 1):
        scale = start.scale * step**power
        grey, weight = product.template(scale * plane.sx, scale * plane.sy)
        if grey.shape[0] > plane.values.shape[0] or grey.shape[1] > plane.values.shape[1]:
            found.append(None)
            continue
        ncc = _correlate(plane.values, spectra, grey, weight)
        found.append(None if ncc is None else _peak(ncc, scale, product, plane))
    return _best_across_scales(found, step)


def _peak(ncc: np.ndarray, scale: float, product: _Product, plane: _Plane) -> _Match:
    """The NCC map's best position, below a pixel by a parabola through its neighbours, as the centre of
    the product's box in input px. The template starts at
    the box's top-left corner, so the centre is half the box, scaled, from the position."""
    row, col = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
    dy = _vertex(ncc[row - 1, col], ncc[row, col], ncc[row + 1, col]) if 0 < row < ncc.shape[0] - 1 else 0.0
    dx = _vertex(ncc[row, col - 1], ncc[row, col], ncc[row, col + 1]) if 0 < col < ncc.shape[1] - 1 else 0.0
    _, _, width, height = product.box
    centre_x = plane.left + (col + dx) / plane.sx + width * scale / 2
    centre_y = plane.top + (row + dy) / plane.sy + height * scale / 2
    return _Match(float(ncc[row, col]), scale, centre_x, centre_y)


def _vertex(before: float, at: float, after: float) -> float:
    """Where a parabola through three equally spaced values peaks, relative to the middle one (-0.5..0.5)."""
    curvature = before - 2 * at + after
    if curvature >= 0:
        return 0.0
    return float(np.clip(0.5 * (before - after) / curvature, -0.5, 0.5))


def _best_across_scales(found: list[_Match | None], ratio: float, around: int | None = None) -> _Match | None:
    """The best match of a run of scales (or the one at `around`), each `ratio` times the one before, its
    scale and centre moved toward the better neighbour by a parabola through the three scores. At either
    end of the run it is returned as found (`at_edge`), so that a caller can look further that way."""
    scored = [(match.score, index) for index, match in enumerate(found) if match is not None]
    if not scored:
        return None
    index = max(scored)[1] if around is None else around
    best = found[index]
    assert best is not None
    before = found[index - 1] if index > 0 else None
    after = found[index + 1] if index + 1 < len(found) else None
    if before is None or after is None:
        return replace(best, at_edge=True)
    offset = _vertex(before.score, best.score, after.score)  # in steps of the list
    neighbour = after if offset > 0 else before
    share = abs(offset)
    return _Match(
        best.score,
        best.scale * ratio**offset,
        best.x + share * (neighbour.x - best.x),
        best.y + share * (neighbour.y - best.y),
    )


# -- the alpha on the photo's canvas -------------------------------------------------------------------


def _mapped_alpha(product: _Product, match: _Match, size: tuple[int, int]) -> np.ndarray:
    """The result's alpha resized by the match's scale and put with the product's
    centre at the match's, on a canvas of `size` (width, height): one antialiased resize of the product's
    region only."""
    width, height = size
    alpha = product.alpha
    left, top, box_w, box_h = product.box
    scale = match.scale  # input px per result px
    # input x = origin_x + (result u) * scale
    origin_x = match.x - (left + box_w / 2) * scale
    origin_y = match.y - (top + box_h / 2) * scale
    x0 = max(0, math.floor(origin_x + left * scale) - 1)
    y0 = max(0, math.floor(origin_y + top * scale) - 1)
    x1 = min(width, math.ceil(origin_x + (left + box_w) * scale) + 1)
    y1 = min(height, math.ceil(origin_y + (top + box_h) * scale) + 1)
    # Keep the source box on the result's crop (Pillow refuses a box outside it).
    x0 = max(x0, math.ceil(origin_x))
    y0 = max(y0, math.ceil(origin_y))
    x1 = min(x1, math.floor(origin_x + alpha.width * scale))
    y1 = min(y1, math.floor(origin_y + alpha.height * scale))
    mask = np.zeros((height, width), np.float32)
    if x1 <= x0 or y1 <= y0:
        return mask
    source = ((x0 - origin_x) / scale, (y0 - origin_y) / scale, (x1 - origin_x) / scale, (y1 - origin_y) / scale)
    source = (max(0.0, source[0]), max(0.0, source[1]), min(float(alpha.width), source[2]),
              min(float(alpha.height), source[3]))
    region = alpha.resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR, box=source, reducing_gap=2.0)
    np.divide(np.asarray(region), np.float32(255), out=mask[y0:y1, x0:x1], dtype=np.float32)
    return mask
