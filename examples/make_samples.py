"""Generate the bundled sample product photos, deterministically, with numpy + Pillow only.

The samples let anyone try the nodes, the CLI and the emulator without hunting for photos (and without
licence questions): `sneaker.jpg` (a shoe on a light tabletop sweep), `bottle.png` (a cosmetics bottle
already cut out, RGBA) and `mug.jpg` (a mug on a coloured backdrop). Every shape is drawn 4x supersampled
for clean edges and shaded with a simple light model, and a fixed seed drives the noise, so reruns write
the same pixels.

    python examples/make_samples.py [OUT_DIR]      # default: the folder this script lives in
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SEED = 20240607
JPEG_QUALITY = 88
SUPERSAMPLE = 4

Point = tuple[float, float]
Array = np.ndarray


# -- drawing helpers ------------------------------------------------------------------------------------


def _mask(size: tuple[int, int], draw: Callable[[ImageDraw.ImageDraw, float], None]) -> Array:
    """An anti-aliased float32 coverage mask (0..1): draw at SUPERSAMPLE x scale, then box-downsample."""
    width, height = size
    big = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 0)
    draw(ImageDraw.Draw(big), SUPERSAMPLE)
    small = big.resize(size, Image.Resampling.BOX)
    return np.asarray(small, np.float32) / 255.0


def polygon(size: tuple[int, int], points: Array) -> Array:
    return _mask(size, lambda d, s: d.polygon([(x * s, y * s) for x, y in points], fill=255))


def ellipse(size: tuple[int, int], box: Sequence[float]) -> Array:
    return _mask(size, lambda d, s: d.ellipse([v * s for v in box], fill=255))


def rounded_rect(size: tuple[int, int], box: Sequence[float], radius: float) -> Array:
    return _mask(size, lambda d, s: d.rounded_rectangle([v * s for v in box], radius=radius * s, fill=255))


def thick_line(size: tuple[int, int], points: Sequence[Point], width: float) -> Array:
    def draw(d: ImageDraw.ImageDraw, s: float) -> None:
        scaled = [(x * s, y * s) for x, y in points]
        d.line(scaled, fill=255, width=round(width * s), joint="curve")
        for x, y in (scaled[0], scaled[-1]):  # round caps
            r = width * s / 2
            d.ellipse([x - r, y - r, x + r, y + r], fill=255)

    return _mask(size, draw)


def smooth(points: Sequence[Point], iterations: int = 4) -> Array:
    """Chaikin corner cutting: turns a coarse closed outline into a smooth curve."""
    p = np.asarray(points, np.float64)
    for _ in range(iterations):
        nxt = np.roll(p, -1, axis=0)
        p = np.stack([0.75 * p + 0.25 * nxt, 0.25 * p + 0.75 * nxt], axis=1).reshape(-1, 2)
    return p


def blur(a: Array, radius: float) -> Array:
    """Gaussian-like blur (three box passes per axis) in float32; Pillow cannot blur float images."""
    r = max(1, round(radius / 1.7))
    out = a.astype(np.float32)
    for axis in (0, 1):
        for _ in range(3):
            pad = [(0, 0)] * out.ndim
            pad[axis] = (r + 1, r)
            c = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis, dtype=np.float64)
            n = out.shape[axis]
            hi = np.take(c, np.arange(2 * r + 1, 2 * r + 1 + n), axis=axis)
            lo = np.take(c, np.arange(0, n), axis=axis)
            out = ((hi - lo) / (2 * r + 1)).astype(np.float32)
    return out


def over(canvas: Array, color: Array | Sequence[float], mask: Array) -> Array:
    """Paint `color` (an RGB triple or an HxWx3 field) onto `canvas` through a coverage mask."""
    m = mask[:, :, None]
    return canvas * (1 - m) + np.asarray(color, np.float32) * m


def grid(size: tuple[int, int]) -> tuple[Array, Array]:
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs, ys


def cylinder_light(xs: Array, left: float, right: float, *, spec_at: float = -0.45) -> tuple[Array, Array]:
    """(diffuse, specular) across a vertical cylinder lit from the front-left: what makes a flat shape
    read as round. u runs -1..1 across the width."""
    u = np.clip((xs - (left + right) / 2) / ((right - left) / 2), -1, 1)
    normal_z = np.sqrt(1 - u**2)
    diffuse = np.clip(-0.45 * u + 0.89 * normal_z, 0, 1) * 0.75 + 0.3
    specular = np.exp(-(((u - spec_at) / 0.08) ** 2)) + 0.35 * np.exp(-(((u - 0.62) / 0.05) ** 2))
    return diffuse.astype(np.float32), specular.astype(np.float32)


def backdrop(
    size: tuple[int, int],
    top: Sequence[float],
    bottom: Sequence[float],
    rng: np.random.Generator,
    *,
    grain: float = 2.2,
) -> Array:
    """A seamless studio sweep: vertical gradient, light falling off from the upper left, a soft
    vignette, a faint low-frequency mottling (paper / tabletop texture) and sensor grain."""
    xs, ys = grid(size)
    width, height = size
    t = (ys / height)[:, :, None] ** 1.4
    base = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    dx, dy = xs / width - 0.3, ys / height - 0.25
    light = 1.04 - 0.12 * np.sqrt(dx**2 + dy**2)
    vx, vy = xs / width - 0.5, ys / height - 0.5
    vignette = 1 - 0.18 * (vx**2 + vy**2) * 2
    mottling = blur(rng.normal(0, 1, (height, width)).astype(np.float32), 40) * 90
    shade = (light * vignette)[:, :, None]
    return base * shade + mottling[:, :, None] * 1.2 + rng.normal(0, grain, (height, width, 1))


def finish(canvas: Array, rng: np.random.Generator, grain: float = 1.6) -> Image.Image:
    """Add a little colour grain (real photos are never perfectly clean) and quantise to uint8."""
    canvas = canvas + rng.normal(0, grain, canvas.shape)
    return Image.fromarray(np.clip(canvas + 0.5, 0, 255).astype(np.uint8))


# -- the samples ----------------------------------------------------------------------------------------


def sneaker(rng: np.random.Generator) -> Image.Image:
    """A side-view running shoe on a warm light tabletop sweep, with a soft contact shadow."""
    size = (1024, 768)
    xs, ys = grid(size)
    canvas = backdrop(size, (242, 238, 232), (212, 205, 196), rng)

    # Shadows first: a wide soft one and a tight contact line under the sole.
    wide = blur(ellipse(size, (190, 552, 910, 616)), 22)
    contact = blur(ellipse(size, (232, 568, 880, 592)), 6)
    canvas *= (1 - 0.38 * wide - 0.45 * contact)[:, :, None]

    upper = polygon(
        size,
        smooth(
            [
                (252, 545),
                (236, 482),
                (238, 420),
                (252, 374),
                (280, 350),
                (322, 352),
                (372, 372),
                (410, 366),
                (440, 338),
                (470, 318),
                (498, 313),
                (516, 327),
                (536, 350),
                (640, 400),
                (720, 440),
                (790, 468),
                (842, 492),
                (864, 515),
                (862, 536),
                (842, 546),
            ]
        ),
    )
    navy = np.asarray((34, 62, 112), np.float32)
    # Vertical light (top brighter), a rounded-volume term from a blurred mask, and a warm bounce
    # light from the tabletop near the bottom edge.
    volume = blur(upper, 26)
    vertical = 1.18 - 0.5 * np.clip((ys - 310) / 240, 0, 1)
    shade = ((0.55 + 0.55 * volume) * vertical)[:, :, None]
    upper_color = navy * shade
    upper_color += (np.clip((ys - 480) / 70, 0, 1) * 18)[:, :, None] * np.asarray((1.0, 0.9, 0.7))
    canvas = over(canvas, upper_color, upper)

    # Collar opening: the dark lining seen from the side.
    collar = polygon(
        size,
        smooth(
            [
                (276, 352),
                (322, 356),
                (372, 376),
                (412, 370),
                (438, 344),
                (410, 358),
                (370, 360),
                (320, 340),
                (282, 342),
            ],
            3,
        ),
    )
    canvas = over(canvas, (30, 28, 32), collar)

    # Toe cap and heel counter in a lighter grey-blue suede, following the shoe's own curves.
    toe = ellipse(size, (716, 440, 940, 640)) * upper
    canvas = over(canvas, np.asarray((78, 102, 146), np.float32) * shade, toe * 0.92)
    heel = ellipse(size, (150, 395, 345, 650)) * upper
    canvas = over(canvas, np.asarray((72, 94, 136), np.float32) * shade, heel * 0.92)

    # The brand stripe: a tapered swoosh along the side.
    stripe = (
        polygon(
            size,
            smooth(
                [
                    (330, 508),
                    (460, 492),
                    (600, 462),
                    (690, 436),
                    (716, 428),
                    (696, 450),
                    (610, 486),
                    (462, 516),
                    (340, 526),
                ],
                3,
            ),
        )
        * upper
    )
    canvas = over(canvas, np.asarray((236, 106, 60), np.float32) * (0.75 + 0.3 * vertical)[:, :, None], stripe)

    # Lacing: a darker eyelet panel along the instep, eyelets, and crossed white laces with shadows.
    direction = np.asarray((0.918, 0.396))
    across = np.asarray((-0.396, 0.918))
    start, end = np.asarray((478.0, 338.0)), np.asarray((742.0, 452.0))
    panel = thick_line(size, [tuple(start + 14 * across), tuple(end + 14 * across)], 30) * upper
    canvas = over(canvas, navy * 0.7 * shade, panel)
    for i in range(6):
        centre = start + (end - start) * (i / 5)
        for sign in (-1, 1):
            a = centre - 8 * across + sign * 9 * direction
            b = centre + 26 * across - sign * 9 * direction
            shadow = blur(thick_line(size, [tuple(a + (2, 4)), tuple(b + (2, 4))], 6), 2)
            canvas *= (1 - 0.35 * shadow)[:, :, None]
            canvas = over(canvas, (236, 236, 230), thick_line(size, [tuple(a), tuple(b)], 6))
        eyelet = ellipse(size, (*(centre + 30 * across - 4), *(centre + 30 * across + 4)))
        canvas = over(canvas, (200, 200, 205), eyelet)

    # Sole: off-white foam with toe spring, and a darker rubber outsole strip along its underside.
    sole = polygon(
        size,
        smooth(
            [
                (228, 530),
                (300, 538),
                (600, 545),
                (800, 538),
                (858, 520),
                (884, 510),
                (890, 528),
                (872, 556),
                (820, 572),
                (600, 580),
                (300, 582),
                (240, 578),
                (222, 560),
                (220, 540),
            ],
            4,
        ),
    )
    sole_shade = 1.05 - 0.22 * np.clip((ys - 530) / 50, 0, 1)
    canvas = over(canvas, np.asarray((240, 236, 228), np.float32) * sole_shade[:, :, None], sole)
    outsole = sole * (1 - np.roll(sole, -7, axis=0))
    canvas = over(canvas, (70, 66, 64), outsole)
    midline = thick_line(size, [(236, 553), (520, 560), (800, 552), (870, 536)], 2.2) * sole
    canvas = over(canvas, (176, 172, 166), midline * 0.7)

    # Specular sheen along the top of the upper, soft and clipped to the shoe.
    sheen = blur(thick_line(size, [(290, 392), (440, 372), (600, 420), (780, 482)], 14), 10) * upper
    canvas += (sheen * 60)[:, :, None]
    return finish(canvas, rng)


def bottle(rng: np.random.Generator) -> Image.Image:
    """A pump bottle cut out on transparency (RGBA) with a faint partial-alpha shadow: the kind of image
    the isolation model returns, useful to try the alpha and background-colour paths."""
    size = (768, 1024)
    xs, ys = grid(size)
    height, width = size[1], size[0]
    rgb = np.zeros((height, width, 3), np.float32)
    alpha = np.zeros((height, width), np.float32)

    shadow = blur(ellipse(size, (210, 925, 560, 975)), 16)
    alpha = np.maximum(alpha, 0.45 * shadow)

    body = rounded_rect(size, (224, 330, 544, 950), 70)
    diffuse, specular = cylinder_light(xs, 224, 544)
    amber = np.asarray((150, 82, 36), np.float32)
    body_color = amber * diffuse[:, :, None] + (specular * 190)[:, :, None]
    # Glass darkens toward the bottom where it is thickest.
    body_color *= (1.05 - 0.25 * np.clip((ys - 800) / 150, 0, 1))[:, :, None]
    rgb = over(rgb, body_color, body)
    alpha = np.maximum(alpha, body)

    label = rounded_rect(size, (236, 520, 532, 800), 8)
    label_color = np.asarray((238, 230, 214), np.float32) * (0.35 + 0.75 * diffuse)[:, :, None]
    label_color += (specular * 40)[:, :, None]
    rgb = over(rgb, label_color, label)
    text = Image.new("L", size, 0)
    draw = ImageDraw.Draw(text)
    draw.text((384, 620), "AURA", font=ImageFont.load_default(size=62), fill=255, anchor="mm")
    draw.text((384, 690), "HAND & BODY WASH", font=ImageFont.load_default(size=20), fill=255, anchor="mm")
    draw.text((384, 740), "500 ml", font=ImageFont.load_default(size=18), fill=255, anchor="mm")
    ink = np.asarray(text, np.float32) / 255 * label
    rgb = over(rgb, np.asarray((60, 44, 34), np.float32) * (0.5 + 0.6 * diffuse)[:, :, None], ink)

    # Shoulder, neck collar and pump head in brushed black plastic.
    for box, radius in (((300, 262, 468, 345), 30), ((330, 214, 438, 272), 10), ((360, 128, 408, 222), 6)):
        part = rounded_rect(size, box, radius)
        d, s = cylinder_light(xs, box[0], box[2])
        rgb = over(rgb, (np.asarray((40, 40, 44), np.float32) * d[:, :, None]) + (s * 120)[:, :, None], part)
        alpha = np.maximum(alpha, part)
    nozzle = rounded_rect(size, (236, 128, 408, 160), 12)
    nozzle_shade = 1.3 - 0.6 * np.clip((ys - 128) / 32, 0, 1)
    rgb = over(rgb, np.asarray((44, 44, 48), np.float32) * nozzle_shade[:, :, None], nozzle)
    alpha = np.maximum(alpha, nozzle)

    # No grain here: noise would make the PNG several times bigger, and the cut-out is meant to be clean.
    rgba = np.dstack([np.clip(rgb + 0.5, 0, 255), np.clip(alpha * 255 + 0.5, 0, 255)])
    return Image.fromarray(rgba.astype(np.uint8), "RGBA")


def mug(rng: np.random.Generator) -> Image.Image:
    """A glazed terracotta mug on a sage backdrop and table, lit from the left."""
    size = (900, 900)
    xs, ys = grid(size)
    canvas = backdrop(size, (178, 194, 170), (150, 168, 144), rng)
    table = np.clip((ys - 600) / 10, 0, 1)[:, :, None]
    canvas = canvas * (1 - table) + canvas * (0.84 + 0.1 * (ys[:, :, None] - 600) / 300) * table

    left, right, top, bottom = 250, 590, 330, 720
    shadow = blur(ellipse(size, (262, 688, 770, 760)), 24)
    canvas *= (1 - 0.45 * shadow)[:, :, None]

    terracotta = np.asarray((190, 98, 62), np.float32)
    diffuse, specular = cylinder_light(xs, left, right, spec_at=-0.5)

    # Handle: a C-shaped ring on the right, its far side darker; the body hides where it attaches.
    handle = np.clip(
        ellipse(size, (right - 70, 405, right + 118, 630)) - ellipse(size, (right - 34, 448, right + 76, 588)), 0, 1
    ) * (xs > right - 40)
    handle_light = 1.0 - 0.45 * np.clip((xs - right) / 110, 0, 1)
    canvas = over(canvas, terracotta * handle_light[:, :, None], handle)

    body = np.maximum(
        rounded_rect(size, (left, top + 25, right, bottom - 20), 6),
        ellipse(size, (left, bottom - 45, right, bottom + 8)),
    )
    body_color = terracotta * diffuse[:, :, None] + (specular * 55)[:, :, None]
    canvas = over(canvas, body_color, body)

    # Unglazed foot ring at the bottom: matte and lighter.
    foot = body * (1 - np.roll(body, -12, axis=0))
    canvas = over(canvas, np.asarray((212, 172, 140), np.float32) * diffuse[:, :, None], foot)

    # Rim and the cream-glazed inside seen from slightly above: the back wall lit, the part under the
    # front lip in shadow.
    rim = ellipse(size, (left, top, right, top + 56))
    canvas = over(canvas, np.asarray((214, 150, 118), np.float32) * diffuse[:, :, None], rim)
    inside = ellipse(size, (left + 12, top + 6, right - 12, top + 50))
    depth = 1.0 - 0.45 * np.clip((ys - top - 10) / 38, 0, 1) - 0.2 * np.clip((xs - left) / (right - left), 0, 1)
    canvas = over(canvas, np.asarray((232, 222, 202), np.float32) * depth[:, :, None], inside)
    return finish(canvas, rng)


def make_samples(out_dir: Path) -> list[Path]:
    """Write sneaker.jpg, bottle.png and mug.jpg into out_dir and return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    written: list[Path] = []
    for filename, build in (("sneaker.jpg", sneaker), ("bottle.png", bottle), ("mug.jpg", mug)):
        path = out_dir / filename
        image = build(rng)
        if filename.endswith(".png"):
            image.save(path, format="PNG", optimize=True)
        else:
            image.save(path, format="JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for written_path in make_samples(target):
        print(f"{written_path}  {written_path.stat().st_size // 1024} KB")
