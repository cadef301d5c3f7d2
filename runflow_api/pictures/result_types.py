"""The values the engine hands back: one image's result, a batch's plan, and progress events; and the
results laid out as `outputs` asks ("first" or "all": `select_outputs`, `output_sources`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property

from PIL import Image

from ..errors import InputRejected
from ..product_isolation import PRICE_PER_IMAGE
from . import qa


@dataclass
class IsolationResult:
    """One isolated product. `image` is RGBA when the service returned transparency.

    A run may return several images: `images` holds every one (with `outputs="all"`), `image` is the
    first, and `images_bytes` their bytes as sent. `output_number` says which of its run's images a
    per-image view (`per_image()`) shows, 1-based."""

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
    images: list[Image.Image] = field(default_factory=list, repr=False)
    images_bytes: list[bytes] = field(default_factory=list, repr=False)
    output_urls: list[str] = field(default_factory=list, repr=False)
    output_number: int = 1
    returned_images: int = 0  # how many images the run returned, whatever `images` was trimmed to
    known_flags: list[str] | None = field(default=None, repr=False)  # `image`'s flags, judged when it was stored
    input_size: tuple[int, int] | None = None  # (width, height) of the input as read, for the `enlarged` flag

    def __post_init__(self) -> None:
        if not self.images:
            self.images = [self.image]
        if not self.returned_images:
            self.returned_images = len(self.images)
        if not self.images_bytes and self.image_bytes:
            self.images_bytes = [self.image_bytes]
        if not self.output_urls and self.output_url:
            self.output_urls = [self.output_url]

    @cached_property
    def flags(self) -> list[str]:
        """QA hints (`qa.FLAGS`). About `image`'s matte (empty, full, cut_off, fragments, tiny, soft): judged
        when the result was produced and kept with it in the cache (`qa.stored`), so a result taken from
        the cache or the fleet needs no second look (nor its pixels decoded); else judged on first use (a
        few ms). An image without an alpha channel has no matte to judge. Then `enlarged`, from the input's
        size and the image's (`qa.input_flags`). See docs/qa.md. A flag never makes anything fail."""
        matte = list(self.known_flags) if self.known_flags is not None else qa.image_flags(self.image) or []
        enlarged = qa.input_flags(self.input_size, self.image.size) if self.input_size else []
        return matte + enlarged

    def add_flag(self, name: str) -> None:
        """Give the result a flag found after its matte was judged (`qa.LATER_FLAGS`, e.g. `unplaced`)."""
        if name not in qa.LATER_FLAGS:
            raise ValueError(f"{name!r} is not a flag given after the matte ({', '.join(qa.LATER_FLAGS)}).")
        if name not in self.flags:
            self.flags.append(name)  # the cached list: later reads see it

    def only_first(self) -> IsolationResult:
        """The result as before runs could return several images: the first image only."""
        if len(self.images) == 1:
            return self
        return replace(self, images=[self.image], images_bytes=self.images_bytes[:1], output_urls=self.output_urls[:1])

    def per_image(self) -> list[IsolationResult]:
        """One result per returned image (`image` is that image, `output_number` its place), for hosts that
        lay every image out in a row, such as the nodes' output batch."""
        views = []
        for number, image in enumerate(self.images, start=1):
            data = self.images_bytes[number - 1] if number <= len(self.images_bytes) else b""
            url = self.output_urls[number - 1] if number <= len(self.output_urls) else self.output_url
            views.append(replace(
                self, image=image, image_bytes=data, images=[image], images_bytes=[data] if data else [],
                output_url=url, output_urls=[url] if url else [], output_number=number,
                known_flags=self.known_flags if number == 1 else None,  # they are the first image's
            ))
        return views


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
    result came from ("shared", "waited:machine", "waited:process"). "done" and "cached" carry the item's
    `result`, so a display can show each cut-out as it arrives."""

    kind: str
    index: int
    run_id: str | None = None
    status: str | None = None
    detail: str | None = None
    cost: Decimal | None = None
    result: IsolationResult | None = None


ProgressCallback = Callable[[ProgressEvent], None]
"""A host's `on_progress`: called from worker threads (docs/ARCHITECTURE.md, threads)."""


@dataclass(frozen=True)
class ImageURL:
    """An image named by URL where only a URL is meant, such as a graph's text widget: it is never read
    as a local path, so whoever can queue a prompt cannot make the server upload its files."""

    url: str
    label: str | None = None  # how messages name it, e.g. "line 2 of image_urls"


OUTPUT_MODES = ("first", "all")


def check_outputs_mode(outputs: str) -> str:
    """`outputs` as the library, the CLI and the nodes accept it: "first" (one image per input, as before)
    or "all" (every image a run returns)."""
    if outputs not in OUTPUT_MODES:
        raise InputRejected(f"outputs must be one of {', '.join(OUTPUT_MODES)}, got {outputs!r}.")
    return outputs


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


def select_outputs(results: Sequence[IsolationResult], outputs: str) -> list[IsolationResult]:
    """One result per image to put in the node's output batch: each input's first image ("first"), or
    every image of every run, input by input ("all")."""
    if check_outputs_mode(outputs) == "first":
        return [result.only_first() for result in results]
    return [view for result in results for view in result.per_image()]


def output_sources(results: Sequence[IsolationResult], outputs: str) -> list[dict[str, int]]:
    """For each image `select_outputs` gives, in the same order: the input it came from (`input`, the
    batch index), its place among its run's images (`output`, 1-based) and how many the run returned
    (`outputs`). Merged into each run_info line."""
    taken = 1 if check_outputs_mode(outputs) == "first" else None
    return [
        {"input": result.index, "output": number, "outputs": result.returned_images}
        for result in results
        for number in range(1, (taken or len(result.images)) + 1)
    ]
