"""The results this process decoded most recently, kept in memory so a repeat costs no disk read or decode.

Re-queueing a graph in ComfyUI asks for the same results again; reading one back from the disk cache
means decoding a PNG (about 85 ms at 2K, most of a disk hit). This tier answers such repeats from memory.
It is bounded in bytes (RUNFLOW_MEMORY_CACHE_MB, default 256; 0 turns it off), shared by every client of
the process, and hands out copies, so a caller that draws on its result cannot change another's.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence

from PIL import Image

from .cache import CachedResult

MEMORY_ENV = "RUNFLOW_MEMORY_CACHE_MB"
_DEFAULT_MB = 256


class RecentResults:
    """Decoded results by cache key: every image of a result (a run may return several), with its entry."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[list[Image.Image], CachedResult, int]] = OrderedDict()
        self._total = 0

    def get(self, key: str) -> tuple[list[Image.Image], CachedResult] | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            decoded, entry, _ = item
        return [image.copy() for image in decoded], entry

    def put(self, key: str, images: Image.Image | Sequence[Image.Image], entry: CachedResult) -> None:
        decoded = [images] if isinstance(images, Image.Image) else list(images)
        size = sum(image.width * image.height * len(image.getbands()) for image in decoded)
        size += sum(len(data) for data in entry.all_images)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._total -= old[2]
            self._items[key] = ([image.copy() for image in decoded], entry, size)
            self._total += size
            while self._total > self.max_bytes:
                _, (_, _, evicted) = self._items.popitem(last=False)
                self._total -= evicted

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._total = 0


_shared: RecentResults | None = None
_shared_lock = threading.Lock()


def shared_recent_results() -> RecentResults:
    """The process's one memory tier, sized from RUNFLOW_MEMORY_CACHE_MB on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            megabytes = float(os.environ.get(MEMORY_ENV) or _DEFAULT_MB)
            _shared = RecentResults(int(max(0.0, megabytes) * 1024 * 1024))
        return _shared
