"""The values the engine hands back: one image's result, a batch's plan, and progress events."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from PIL import Image

from .product_isolation import PRICE_PER_IMAGE


@dataclass
class IsolationResult:
    """One isolated product. `image` is RGBA when the service returned transparency."""

    image: Image.Image
    run_id: str | None
    cost: Decimal | None
    output_url: str | None
    cached: bool
    aspect_ratio: str
    resolution: str
    cache_key: str
    resumed: bool = False
    elapsed_s: float = 0.0
    index: int = 0
    image_bytes: bytes = field(default=b"", repr=False)  # as the service sent it: saving needs no re-encode
    shared_hit: bool = False  # found in the fleet's shared store (paid for by another machine, or earlier)
    waited_for: str | None = None  # "process" or "machine" that was producing the same input meanwhile


@dataclass(frozen=True)
class BatchPlan:
    """What a call would do before it spends anything: the spend guard and `--dry-run` read this."""

    total: int
    unique: int
    cached: int
    resumable: int
    to_create: int
    price_per_image: Decimal = PRICE_PER_IMAGE
    rejected: int = 0

    @property
    def duplicates(self) -> int:
        return self.total - self.rejected - self.unique

    @property
    def estimated_cost(self) -> Decimal:
        return self.to_create * self.price_per_image


@dataclass(frozen=True)
class ProgressEvent:
    """Something happened to item `index`. Kinds: planned, cached, staged, waiting (another process is
    producing the same input), created, resumed, status, downloaded, done, failed. Emitted from worker
    threads. `detail` says who is waited for ("process" or "machine") and, on "cached", where a stored
    result came from ("shared", "waited:machine", "waited:process")."""

    kind: str
    index: int
    run_id: str | None = None
    status: str | None = None
    detail: str | None = None
    cost: Decimal | None = None


@dataclass(frozen=True)
class ImageURL:
    """An image named by URL where only a URL is meant, such as a graph's text widget: it is never read
    as a local path, so whoever can queue a prompt cannot make the server upload its files."""

    url: str
    label: str | None = None  # how messages name it, e.g. "line 2 of image_urls"


class Charges:
    """What one execution paid for each of its results, asked in the order they are reported: nothing
    for a cached result, for a repeat of a run already counted (identical pixels share one run) or on
    the emulator. The node's run_info and the CLI's report and summary all use it, so they agree."""

    def __init__(self, *, emulator: bool) -> None:
        self.emulator = emulator
        self._counted: set[str] = set()

    def charge(self, result: IsolationResult) -> Decimal:
        repeat = result.run_id in self._counted
        if result.run_id:
            self._counted.add(result.run_id)
        if self.emulator or result.cached or repeat or result.cost is None:
            return Decimal(0)
        return result.cost
