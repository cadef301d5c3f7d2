"""Results as they arrive: the newest finished cut-out of a running batch, shown on the node.

A batch of 40 would otherwise be a black box until its last image is in. Every finished item's result
reaches `offer` (from the engine's worker threads: it only keeps a reference); the node's own thread,
which updates the progress bar anyway, asks `take` for a picture to send with the bar. One is made only
when a newer cut-out has arrived and `PREVIEW_INTERVAL_S` has passed since the last (the final update
always gets the newest), at ComfyUI's preview size, over the node's background colour, or over a
checkerboard when the background is transparent, as image editors show transparency.
"""

from __future__ import annotations

import threading
import time

from PIL import Image, ImageOps

from ..runflow_api.pictures.result_types import ProgressEvent

PREVIEW_INTERVAL_S = 0.5  # at most about two previews a second
PREVIEW_SIZE = 512  # ComfyUI's default --preview-size
_CHECKER = 16
_CHECKER_TONES = ((204, 204, 204), (255, 255, 255))


def checkerboard(size: tuple[int, int]) -> Image.Image:
    """Light grey and white squares of 16 px, the usual picture of "transparent"."""
    tile = Image.new("RGB", (2 * _CHECKER, 2 * _CHECKER), _CHECKER_TONES[1])
    tile.paste(_CHECKER_TONES[0], (0, 0, _CHECKER, _CHECKER))
    tile.paste(_CHECKER_TONES[0], (_CHECKER, _CHECKER, 2 * _CHECKER, 2 * _CHECKER))
    board = Image.new("RGB", size)
    for top in range(0, size[1], tile.height):
        for left in range(0, size[0], tile.width):
            board.paste(tile, (left, top))
    return board


def render(image: Image.Image, background: tuple[int, int, int] | None, size: int = PREVIEW_SIZE) -> Image.Image:
    """An RGB picture of at most `size` x `size`: the cut-out over `background`, or over a checkerboard."""
    small = ImageOps.contain(image, (size, size), Image.Resampling.BILINEAR)
    if small.mode != "RGBA":
        return small.convert("RGB")
    base = checkerboard(small.size) if background is None else Image.new("RGB", small.size, background)
    base.paste(small, mask=small.getchannel("A"))
    return base


class LatestPreview:
    """The newest finished cut-out of one node's batch, handed out at most every `PREVIEW_INTERVAL_S`."""

    def __init__(self, background: tuple[int, int, int] | None, size: int = PREVIEW_SIZE) -> None:
        self._background, self._size = background, size
        self._lock = threading.Lock()
        self._newest: Image.Image | None = None
        self._sent_at = float("-inf")

    def offer(self, event: ProgressEvent) -> None:
        """Keep the image of a finished item (called from the engine's worker threads)."""
        if event.result is not None:
            with self._lock:
                self._newest = event.result.image

    def take(self, *, final: bool = False) -> Image.Image | None:
        """A picture to show now, or None: nothing new has arrived, or the last one went out too recently."""
        now = time.monotonic()
        with self._lock:
            if self._newest is None or (not final and now - self._sent_at < PREVIEW_INTERVAL_S):
                return None
            image, self._newest, self._sent_at = self._newest, None, now
        return render(image, self._background, self._size)
