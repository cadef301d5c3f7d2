"""A catalogue's marketplace files (`isolate --formats`): the presets chosen, the tier bought for them, the
files each photo still needs, and rendering those on worker threads while other runs wait on the service.

Each photo's files go to `OUT/<preset>/<its relative path, with the preset's extension>`
(`marketplace_output`). Every file written is recorded in the output folder's renderings record
(`renderings.Renderings`) with the preset it was made for, so a re-run renders only the files that are
missing or whose preset changed (0 paid runs: the result is stored), and the same command again touches
nothing. The catalogue's own loop hands each result over and goes on collecting: rendering ten presets of
a 4K result takes about a second of CPU, which on the caller's thread would hold back the next photos'
saving and submitting; Pillow releases the GIL while it resizes and encodes, so a small pool of threads
uses the other cores. A bounded number of results wait for a renderer (each holds its pixels).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import RunflowError
from ..pictures import marketplace_presets, marketplace_tiers, qa
from ..pictures.edges import EDGES_CLEAN
from ..pictures.marketplace_checks import FLAGS
from ..pictures.marketplace_presets import Preset
from ..pictures.marketplace_render import Product, render_all
from ..pictures.result_types import IsolationResult
from ..product_isolation import RESOLUTIONS
from . import contact_thumbs, marketplace_output
from .folders import Item
from .renderings import Renderings

EDGES = EDGES_CLEAN  # a marketplace file's product always has clean edges (no old background in its rim)
_SWAPPED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that turn the photo a quarter turn


def chosen(formats: str | None, strings: Iterable[str] = (), files: Iterable[Path] = ()) -> list[Preset]:
    """The presets of a command: the shipped ones `formats` names ('all' for every one) plus every custom
    preset given as a string or in a file; each checked here, before anything is spent. A custom preset
    replaces a shipped one of the same name (the folder is the name)."""
    custom = [marketplace_presets.parse_custom(text, where="--preset") for text in strings]
    for path in files:
        custom.extend(marketplace_presets.read_file(path))
    picked = marketplace_presets.select(formats, custom) if formats else []
    by_name = {preset.name: preset for preset in [*picked, *custom]}
    return list(by_name.values())


def photo_size(path: Path) -> tuple[int, int] | None:
    """A photo's (width, height) as the service sees it (EXIF rotation applied), from its header only;
    None when it cannot be read (the run itself then reports why)."""
    try:
        with Image.open(path) as photo:
            width, height = photo.size
            turned = photo.getexif().get(0x0112) in _SWAPPED_ORIENTATIONS
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return (height, width) if turned else (width, height)


def catalogue_tier(presets: list[Preset], aspect_ratio: str, photos: Iterable[Path]) -> marketplace_tiers.TierChoice:
    """One tier for the whole catalogue (a run's options are the catalogue's): the largest any photo needs
    (`marketplace_tiers.choose_tier` per photo), with every preset some photo will show enlarged."""
    tiers = list(RESOLUTIONS)
    choices = []
    for path in photos:
        size = photo_size(path) if aspect_ratio == "auto" else None
        shape = aspect_ratio if aspect_ratio != "auto" or size is not None else "1:1"
        choices.append(marketplace_tiers.choose_tier(presets, shape, size))
    if not choices:
        return marketplace_tiers.choose_tier(presets, "1:1" if aspect_ratio == "auto" else aspect_ratio)
    top = max(choices, key=lambda choice: tiers.index(choice.resolution))
    enlarged = tuple(preset.name for preset in presets if any(preset.name in choice.enlarged for choice in choices))
    return marketplace_tiers.TierChoice(top.resolution, top.canvas, enlarged)


def _made(preset: Preset) -> dict[str, Any]:
    """What a preset's file is a function of, as the record keeps it: the preset's values and the edges."""
    values = preset.describe()
    values.pop("source")
    values.pop("checked")
    return {"marketplace": values, "edges": EDGES}


class MarketplaceFiles:
    """The marketplace files of one catalogue command: which each photo needs, rendering them off the
    caller's thread, and what the report and the end-of-run line say of them."""

    def __init__(self, out_dir: Path, presets: list[Preset], renderings: Renderings, *, rewrite: bool,
                 thumbnails: bool, workers: int | None = None) -> None:
        self.out_dir = out_dir
        self.presets = presets
        self.renderings = renderings
        self.rewrite = rewrite
        self.thumbnails = thumbnails
        count = workers or max(1, min(4, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="runflow-render")
        self._waiting = threading.BoundedSemaphore(2 * count)  # results held in memory for a renderer
        self._lock = threading.Lock()
        self._futures: list[Future[None]] = []
        self.written = 0
        self.kept = 0  # files already there, made for the same preset from the same kind of result
        self.flagged: dict[str, list[str]] = {}  # compliance flag -> files carrying it ("amazon/shoes/red.jpg")
        self.flagged_files = 0
        self.failed: list[str] = []

    def path(self, item: Item, preset: Preset) -> Path:
        return marketplace_output.output_path(self.out_dir, preset, item.output.relative_to(self.out_dir))

    def missing(self, item: Item) -> list[Preset]:
        """The presets whose file for `item` is not there, or was made otherwise (another preset under the
        same name, an older version): all of them with --rewrite."""
        if self.rewrite:
            return list(self.presets)
        return [preset for preset in self.presets
                if not self.path(item, preset).is_file()
                or not self.renderings.made_as(self.path(item, preset), _made(preset))]

    def skipped(self, item: Item) -> dict[str, Any]:
        """The report's `formats` entry of a photo whose files were all written by an earlier run: what
        their records say (flags, measurements, thumbnail)."""
        self.kept += len(self.presets)
        return {"formats": self._recorded(item, self.presets)}

    def _recorded(self, item: Item, presets: list[Preset]) -> dict[str, Any]:
        return {preset.name: {**self.renderings.facts(self.path(item, preset)), "path": str(self.path(item, preset))}
                for preset in presets}

    def submit(self, item: Item, result: IsolationResult, row: dict[str, Any]) -> None:
        """Render the presets `item` still needs from `result` on a worker thread; `row` (the photo's
        report row) gets their entries as they are written. Blocks only while the renderers are far behind."""
        presets = self.missing(item)
        kept = [preset for preset in self.presets if preset not in presets]
        self.kept += len(kept)
        row["formats"] = self._recorded(item, kept)
        if not presets:
            return
        self._waiting.acquire()
        future = self._pool.submit(self._render, item, result, presets, row)
        future.add_done_callback(lambda _: self._waiting.release())
        self._futures.append(future)

    def _render(self, item: Item, result: IsolationResult, presets: list[Preset], row: dict[str, Any]) -> None:
        try:
            renderings = render_all(Product.of(result, edges=EDGES, presets=presets), presets)
        except RunflowError as exc:
            with self._lock:
                self.failed.append(f"{item.relative or item.source.name}: {exc}")
                row.setdefault("errors", []).append(f"marketplace files: {exc}")
            return
        for rendering in renderings:
            target = self.path(item, rendering.preset)
            marketplace_output.write(rendering, target)
            entry = rendering.report()
            facts: dict[str, Any] = {key: entry[key] for key in entry if key != "preset"}
            if self.thumbnails:
                facts["thumbnails"] = {"out": self._thumbnail(target)}
            self.renderings.record(target, result.cache_key, _made(rendering.preset), facts)
            shown = Path(os.path.relpath(target, self.out_dir)).as_posix()
            with self._lock:
                self.written += 1
                row["formats"][rendering.preset.name] = {**self.renderings.facts(target), "path": str(target)}
                self.flagged_files += bool(rendering.flags)
                for flag in rendering.flags:
                    self.flagged.setdefault(flag, []).append(shown)

    def _thumbnail(self, target: Path) -> list[Any] | None:
        """The file's contact-sheet thumbnail, made from its bytes just written (a JPEG decodes at 1/8)."""
        relative = Path(contact_thumbs.FOLDER, os.path.relpath(target, self.out_dir))
        relative = relative.with_name(relative.name + ".webp")
        size = contact_thumbs.save_thumbnail(target, self.out_dir / relative)
        return None if size is None else [relative.as_posix(), *size]

    def finish(self) -> None:
        """Wait for every file still being rendered (a renderer's unexpected error is raised here)."""
        try:
            for future in self._futures:
                future.result()
        finally:
            self._pool.shutdown(wait=True)

    def cancel(self) -> None:
        """Stop: files not started are dropped (a re-run makes them, free), those being written finish."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def summary(self) -> dict[str, Any]:
        """The JSON report's `formats` totals."""
        return {"presets": [preset.describe() for preset in self.presets], "written": self.written,
                "kept": self.kept, "flagged": self.flagged_files, "failed": len(self.failed)}

    def line(self) -> str:
        """The end-of-run line: files written and kept, and the compliance flags like the QA flags'."""
        text = f"Marketplace files ({', '.join(preset.name for preset in self.presets)}): {self.written} written"
        text += f", {self.kept} already there." if self.kept else "."
        if self.flagged_files:
            text += " " + qa.flagged_line(self.flagged, self.flagged_files, order=FLAGS)
        if self.failed:
            text += f" {len(self.failed)} photo(s) without files: " + "; ".join(self.failed[:3])
        return text

