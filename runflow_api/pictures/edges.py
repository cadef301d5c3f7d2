"""Clean edges: the product's own colour in the partly transparent pixels of a cut-out.

A soft edge pixel (hair, fur, fabric, motion blur, a shadow's rim) of a cut-out still carries the old
background's colour mixed into the product's: composited on a new background it shows as a halo or a
fringe. `decontaminate` estimates the foreground colour F of every pixel with 0 < alpha < 1 from the
observed colour I = aF + (1-a)B and leaves the alpha, and every opaque or empty pixel, exactly as they were.

The method is blur-fusion (Forte and Pitié, 2021, "Approximate fast foreground colour estimation"), in
its two passes: a large blur gives a first F and B everywhere, a small one refines them locally. Chosen
by measurement (`benchmarks/edges.py`, docs/edges.md), against a single pass and against pulling the
colour of the opaque core alone. Two changes make it fast without changing what it computes in spirit:
- the large pass (radius ~90 px) is a box blur on a grid of 16 px cells, read back bilinearly: it only
  has to be roughly right, and it costs a few milliseconds instead of a blur of the whole image;
- the small pass runs only on tiles that hold edge pixels, each with the margin its blur reads, so an
  image's opaque body and empty surround cost nothing but one look at the alpha. Where a row of tiles is
  mostly edge (a wide soft rim, fur, a shadow), the row is one strip instead: its margins are read once
  rather than once per tile (three times the pixels of a 16 px tile), which halves the cost there.
numpy only: nothing to install, nothing downloaded.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import InputRejected

EDGES_AS_RETURNED = "as returned"
EDGES_CLEAN = "clean"
EDGE_MODES = (EDGES_AS_RETURNED, EDGES_CLEAN)

CELL = 16  # px per cell of the large pass' grid
STEP = 4  # the large pass reads every STEP-th pixel of every STEP-th row
LARGE_RADIUS_CELLS = 6  # the large pass' box radius in cells (~90 px, the paper's radius)
SMALL_RADIUS = 6  # the small pass' box radius in px (the paper's)
TILE = 16  # px per side of the small pass' tiles (16 and 32 measured alike; 16 hugs thin strands closer)
_TILES_PER_CHUNK = 512  # tiles processed at once: bounds the scratch memory (~16 MB per chunk and float plane set)
# A row of tiles whose edge tiles cover at least this share of the span from its first to its last is cleaned
# as one strip: a tile reads (16 + 12)^2 px for 16^2, a strip (16 + 12) x (span + 12), so past about half the
# strip reads fewer pixels (and gathers them in one slice instead of per tile).
_STRIP_SHARE = 0.5


def check_edges(edges: str) -> str:
    """`edges` as the library, the CLI and the nodes accept it."""
    if edges not in EDGE_MODES:
        raise InputRejected(
            f"edges must be one of {', '.join(repr(mode) for mode in EDGE_MODES)}, got {edges!r}: 'clean' removes "
            "the old background's colour from soft edges, 'as returned' keeps the service's pixels."
        )
    return edges


def decontaminate(rgba: np.ndarray) -> np.ndarray:
    """A copy of `rgba` (HxWx4 uint8, straight alpha) whose partly transparent pixels carry the estimated
    foreground colour. Alpha, opaque and fully transparent pixels are unchanged."""
    if not isinstance(rgba, np.ndarray) or rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        what = f"{rgba.dtype} array of shape {rgba.shape}" if isinstance(rgba, np.ndarray) else type(rgba).__name__
        raise InputRejected(
            f"decontaminate needs an HxWx4 uint8 array with straight alpha, got a {what}. Convert with "
            "np.asarray(image.convert('RGBA'))."
        )
    out = rgba.copy()
    alpha = rgba[..., 3]
    band = np.subtract(alpha, 1, dtype=np.uint8) < 254  # 0 < alpha < 255 (0 wraps to 255)
    origins = _band_tiles(band)
    if not len(origins):
        return out
    grid = _corners(_large_pass_grid(rgba))
    tiles = []
    for row in np.split(origins, np.flatnonzero(np.diff(origins[:, 0])) + 1):  # argwhere's order: row by row
        span = int(row[-1, 1] - row[0, 1]) + TILE
        if len(row) > 1 and len(row) * TILE >= _STRIP_SHARE * span:
            _clean_windows(rgba, out, row[:1], grid, (TILE, span))
        else:
            tiles.append(row)
    sparse = np.concatenate(tiles) if tiles else origins[:0]
    for start in range(0, len(sparse), _TILES_PER_CHUNK):
        _clean_windows(rgba, out, sparse[start:start + _TILES_PER_CHUNK], grid, (TILE, TILE))
    return out


def clean_image(image: Image.Image) -> Image.Image:
    """An RGBA image with decontaminated edges; an image without alpha has no edges to clean."""
    if image.mode != "RGBA":
        return image
    return Image.fromarray(decontaminate(np.asarray(image)))


def _band_tiles(band: np.ndarray) -> np.ndarray:
    """(y, x) origins of the TILE-sized tiles holding at least one edge pixel."""
    height, width = band.shape
    rows, cols = -(-height // TILE), -(-width // TILE)
    padded = np.zeros((rows * TILE, cols * TILE), np.uint8)
    padded[:height, :width] = band
    # Rows of tiles first (a reduction along whole image rows), then across each row of tiles.
    hit = padded.reshape(rows, TILE, cols * TILE).max(axis=1).reshape(rows, cols, TILE).max(axis=2)
    return np.argwhere(hit) * TILE


def _large_pass_grid(rgba: np.ndarray) -> np.ndarray:
    """The large pass' F^ and B^ on the cell grid, (rows+2, cols+2, 6) float32 in 0..1, edge-padded by one
    cell for the bilinear read. Cells with no product (no background) sampled near them hold NaN for F^
    (B^): an edge pixel that reads one (a lone soft speck far from anything) falls back to its own colour.

    Read from every STEP-th pixel of every STEP-th row: a box of ~180 px still averages ~2000 samples, and
    the whole-image part of the work shrinks STEP^2 times."""
    height, width = rgba.shape[:2]
    sample = rgba[::STEP, ::STEP]
    per_cell = CELL // STEP
    rows, cols = -(-sample.shape[0] // per_cell), -(-sample.shape[1] // per_cell)
    planes = np.zeros((rows * per_cell, cols * per_cell, 8), np.float32)
    alpha = sample[..., 3:4] / np.float32(255)
    colour = sample[..., :3] / np.float32(255)
    inside = planes[: sample.shape[0], : sample.shape[1]]
    np.multiply(colour, alpha, out=inside[..., 0:3])
    inside[..., 3:4] = alpha
    np.subtract(colour, inside[..., 0:3], out=inside[..., 4:7])
    inside[..., 7:8] = 1 - alpha
    by_rows = planes.reshape(rows, per_cell, cols * per_cell * 8).sum(axis=1, dtype=np.float64)
    sums = by_rows.reshape(rows, cols, per_cell, 8).sum(axis=2)
    blurred = _box_sum(sums, LARGE_RADIUS_CELLS, axes=(0, 1))
    means = np.full((rows, cols, 6), np.nan)
    for target, total, weight in ((slice(0, 3), slice(0, 3), 3), (slice(3, 6), slice(4, 7), 7)):
        np.divide(blurred[..., total], blurred[..., weight:weight + 1], out=means[..., target],
                  where=blurred[..., weight:weight + 1] > 1e-9)
    return np.pad(means, ((1, 1), (1, 1), (0, 0)), mode="edge").astype(np.float32)


def _box_sum(values: np.ndarray, radius: int, *, axes: tuple[int, int]) -> np.ndarray:
    """Sum over the (2r+1)^2 box around each element along two axes, zeros beyond the edges (summed-area
    table, so the cost does not depend on the radius)."""
    out = values
    for axis in axes:
        size = out.shape[axis]
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius + 1, radius)
        table = np.cumsum(np.pad(out, pad), axis=axis)
        upper = np.take(table, np.arange(2 * radius + 1, 2 * radius + 1 + size), axis=axis)
        lower = np.take(table, np.arange(size), axis=axis)
        out = upper - lower
    return out


def _sample_grid(corners: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear read of the cell grid at pixels (`ys`, `xs`), 1-D: (n, 6). `corners` holds each cell's
    four neighbours side by side (`_corners`), so a pixel costs one gather instead of four."""
    fy = (ys + 0.5) / CELL + 0.5  # cell centres sit at (i + 0.5) * CELL, shifted by the one-cell pad
    fx = (xs + 0.5) / CELL + 0.5
    y0 = np.clip(fy.astype(np.intp), 0, corners.shape[0] - 1)
    x0 = np.clip(fx.astype(np.intp), 0, corners.shape[1] - 1)
    wy = np.clip(fy - y0, 0, 1).astype(np.float32)[:, None]
    wx = np.clip(fx - x0, 0, 1).astype(np.float32)[:, None]
    found = corners[y0, x0]
    upper = found[:, 0:6] + (found[:, 6:12] - found[:, 0:6]) * wx
    lower = found[:, 12:18] + (found[:, 18:24] - found[:, 12:18]) * wx
    result: np.ndarray = upper + (lower - upper) * wy
    return result


def _corners(grid: np.ndarray) -> np.ndarray:
    """(rows+1, cols+1, 24): for each cell of the padded grid, itself, its right, lower and lower-right
    neighbours' six values."""
    return np.ascontiguousarray(
        np.concatenate([grid[:-1, :-1], grid[:-1, 1:], grid[1:, :-1], grid[1:, 1:]], axis=2)
    )


def _fuse(image: np.ndarray, alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One blur-fusion step for n pixels (image, fg, bg: (n, 3) in 0..1; alpha: (n,)): F and B.

    F = F^ + a (I - a F^ - (1-a) B^) and B = B^ + (1-a) (I - a F^ - (1-a) B^), where F^ = blur(aI)/blur(a)
    and B^ = blur((1-a)I)/blur(1-a) are the weighted means of the neighbours that are product and
    background, corrected so that the pair explains the observed colour."""
    a = alpha[:, None]
    residual = image - a * fg - (1 - a) * bg
    return np.clip(fg + a * residual, 0, 1), np.clip(bg + (1 - a) * residual, 0, 1)


def _clean_windows(rgba: np.ndarray, out: np.ndarray, origins: np.ndarray, grid: np.ndarray,
                   size: tuple[int, int]) -> None:
    """Both passes for some edge windows of `size` (rows, columns: a tile, or a strip of a row of tiles),
    each read with a SMALL_RADIUS margin; writes the windows' edge pixels.

    The large pass is needed only where 0 < a < 1: elsewhere its F (a = 1) or B (a = 0) is the observed
    colour, and the other one has no weight in the small pass. The box sums come from a summed-area
    table, in float32 for a tile (sums up to ~800, exact to ~1e-4) and float64 for a strip, whose running
    sums along a row of thousands of pixels would lose the small sums of a faint edge in float32."""
    height, width = rgba.shape[:2]
    row_span = np.arange(-SMALL_RADIUS, size[0] + SMALL_RADIUS)
    col_span = np.arange(-SMALL_RADIUS, size[1] + SMALL_RADIUS)
    ys, xs = origins[:, :1] + row_span, origins[:, 1:] + col_span  # pixel rows and columns of each window
    inside = ((ys >= 0) & (ys < height))[:, :, None] & ((xs >= 0) & (xs < width))[:, None, :]
    ys, xs = np.clip(ys, 0, height - 1), np.clip(xs, 0, width - 1)
    window = rgba[ys[:, :, None], xs[:, None, :]]  # (n, S, S, 4) uint8
    image = window[..., :3] / np.float32(255)
    alpha = window[..., 3] / np.float32(255)
    alpha *= inside
    edge = (window[..., 3] > 0) & (window[..., 3] < 255) & inside
    where = np.nonzero(edge)
    pixel_y, pixel_x = ys[where[0], where[1]], xs[where[0], where[2]]
    means = _sample_grid(grid, pixel_y, pixel_x)
    observed = image[edge]
    known = ~np.isnan(means)
    fg_hat = np.where(known[:, :3], means[:, :3], observed)
    bg_hat = np.where(known[:, 3:], means[:, 3:], observed)
    fg_edge, bg_edge = _fuse(observed, alpha[edge], fg_hat, bg_hat)
    planes = np.empty((*alpha.shape, 8), np.float32)
    background = (1 - alpha) * inside
    np.multiply(image, alpha[..., None], out=planes[..., 0:3])
    planes[..., 0:3][edge] = fg_edge * alpha[edge][:, None]
    planes[..., 3] = alpha
    np.multiply(image, background[..., None], out=planes[..., 4:7])
    planes[..., 4:7][edge] = bg_edge * background[edge][:, None]
    planes[..., 7] = background
    precision = np.float32 if size[1] <= TILE else np.float64
    table = np.zeros((len(origins), len(row_span) + 1, len(col_span) + 1, 8), precision)
    np.cumsum(planes, axis=1, out=table[:, 1:, 1:], dtype=precision)
    np.cumsum(table[:, 1:, 1:], axis=2, out=table[:, 1:, 1:])
    # The windows' own edge pixels (not their margins'), and their (2r+1)^2 box sums from the table.
    rows, cols = slice(SMALL_RADIUS, SMALL_RADIUS + size[0]), slice(SMALL_RADIUS, SMALL_RADIUS + size[1])
    tile, top, left = np.nonzero(edge[:, rows, cols])
    bottom, right = top + 2 * SMALL_RADIUS + 1, left + 2 * SMALL_RADIUS + 1
    sums = table[tile, bottom, right] - table[tile, top, right] - table[tile, bottom, left] + table[tile, top, left]
    tiny = np.float32(1e-6)
    row, col = top + SMALL_RADIUS, left + SMALL_RADIUS
    refined, _ = _fuse(image[tile, row, col], alpha[tile, row, col],
                       sums[:, 0:3] / np.maximum(sums[:, 3:4], tiny), sums[:, 4:7] / np.maximum(sums[:, 7:8], tiny))
    out[ys[tile, row], xs[tile, col], :3] = (refined * 255 + 0.5).astype(np.uint8)
