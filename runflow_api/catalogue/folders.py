"""A folder of product photos as a list of work items: what to read, where each result goes, what is done.

Outputs mirror the input tree, so a catalogue of 10,000 photos in nested folders comes back in the same
shape. Every output path is resolved and must stay inside the output folder (a glob such as
`in/*/../../x/*.png` would otherwise mirror onto files outside it), and the output folder is never read as
input (`--out in/isolated` would otherwise pay again for its own results on the next run), nor are the
report and its thumbnails (`--report in/qa.html` would otherwise pay for `in/qa-thumbs/*.webp`). A folder or
glob takes every file of a format the readers open (`formats.readable_suffixes`: AVIF, HEIC, TIFF...);
every other file it meets is listed as `Skipped` with the reason, so nothing is left out silently. Results are
written atomically (a temporary file, then a rename): a Ctrl-C never leaves a half-written file that a
re-run would mistake for a finished one.
"""

from __future__ import annotations

import glob
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..errors import InputRejected
from ..pictures import colour, formats, result_images
from ..pictures.result_types import IsolationResult
from ..settings.fsutil import LIKE_ANY_FILE, atomic_write
from . import report_html

OUTPUT_FORMATS = ("png", "webp")
INSIDE_OUT = "inside --out: results, not inputs"
REPORT_FILES = "the report's own files"
# Image formats the readers cannot open, named so the reason says what to do instead of "not an image".
_UNSUPPORTED = {
    **dict.fromkeys((".cr2", ".cr3", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2", ".pef",
                     ".dng", ".raw", ".3fr", ".erf", ".kdc", ".mrw", ".x3f", ".srw", ".iiq"),
                    "a camera RAW file: export it as JPEG or TIFF"),
    ".svg": "a vector drawing: export it as PNG",
    ".jxl": "JPEG XL: export it as JPEG or PNG",
    ".exr": "an HDR image: export it as 8-bit PNG or TIFF", ".hdr": "an HDR image: export it as 8-bit PNG or TIFF",
    ".psb": "a large Photoshop document: export it as PNG or TIFF",
}


@dataclass(frozen=True)
class Item:
    """One input photo and the file its result goes to."""

    source: Path
    output: Path
    refused: str | None = None  # why this item must not run at all (nothing is spent on it)
    relative: str = ""  # the input's path below the folder or glob root it was found under (run metadata)


@dataclass(frozen=True)
class Skipped:
    """A file an input folder or glob holds that is not read, and why (the summary and the report list it)."""

    path: Path
    reason: str


def not_read_reason(path: Path) -> str:
    """Why a file met in a folder or glob is not an input (it is not of a readable format)."""
    suffix = path.suffix.lower()
    if suffix in _UNSUPPORTED:
        return f"unsupported format ({_UNSUPPORTED[suffix]})"
    return f"not an image ({suffix or 'no extension'})"


def _is_image(path: Path) -> bool:
    return formats.readable(path) and path.is_file()


def _inside(path: Path, folder: Path) -> bool:
    """`path` is `folder` or below it; both already resolved."""
    return path == folder or path.is_relative_to(folder)


def _walk_images(folder: Path, skip: list[Path], skipped: list[Skipped]) -> list[Path]:
    """Image files below `folder`, not descending into `skip` (the resolved folders and files this command
    writes) or a report's thumbnail folder: a catalogue re-run must not list, let alone pay for, the
    thousands of results of the previous run or the thumbnails of its report. Those folders (once each, not
    their thousands of files), the report itself and every file of no readable format go to `skipped`."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        written = [name for name in dirs if _written_here(Path(root, name), skip)]
        skipped.extend(Skipped(Path(root, name), _written_reason(Path(root, name), skip)) for name in written)
        dirs[:] = [name for name in dirs if name not in written]
        for name in files:
            path = Path(root, name)
            if _is_image(path):
                found.append(path)  # one of ours among them is left out, and named, by `collect`
            elif path.is_file():
                reason = _written_reason(path, skip) if _written_here(path, skip) else not_read_reason(path)
                skipped.append(Skipped(path, reason))
    return sorted(found)


def _written_here(path: Path, skip: list[Path]) -> bool:
    """`path` is, or lies below, something this command or an earlier report writes: never an input."""
    resolved = path.resolve()
    return any(_inside(resolved, written) for written in skip) or any(
        report_html.is_thumbs_folder(folder) for folder in (path, path.parent))


def _written_reason(path: Path, skip: list[Path]) -> str:
    """Why a path this command or a report writes is not read: `skip[0]` is the output folder."""
    return INSIDE_OUT if _inside(path.resolve(), skip[0]) else REPORT_FILES


def _expand(argument: str, skip: list[Path], skipped: list[Skipped]) -> tuple[Path, list[Path]]:
    """(base folder the outputs are relative to, files) for a file, a folder or a glob argument."""
    path = Path(argument)
    if path.is_dir():
        return path, _walk_images(path, skip, skipped)
    if path.is_file():
        return path.parent, [path]
    if glob.has_magic(argument):
        prefix = re.split(r"[*?\[]", argument, maxsplit=1)[0]
        base = Path(prefix) if prefix.endswith(os.sep) else Path(prefix).parent
        matches = sorted(Path(p) for p in glob.glob(argument, recursive=True))
        skipped.extend(Skipped(p, not_read_reason(p)) for p in matches if p.is_file() and not _is_image(p))
        return base, [p for p in matches if _is_image(p)]
    raise InputRejected(f"Input {argument!r} is not a file, a folder or a glob that matches anything.")


def collect(arguments: list[str], out_dir: Path, fmt: str, written: Sequence[Path] = (),
            skipped: list[Skipped] | None = None) -> list[Item]:
    """Every input photo with its mirrored output path; duplicate outputs are disambiguated, not lost.

    Photos inside the output folder, the other paths this command writes (`written`: the report and its
    thumbnail folder) and any HTML report's thumbnail folder are left out. An item whose output would fall
    outside the output folder comes back with `refused` set, so it fails alone, before anything is staged or
    paid. Files met but not read are appended to `skipped` when given, each with its reason."""
    skipped = [] if skipped is None else skipped
    if fmt not in OUTPUT_FORMATS:
        raise InputRejected(f"--format {fmt!r} is not supported; use one of {', '.join(OUTPUT_FORMATS)}.")
    out_root = out_dir.resolve()
    skip = [out_root, *(path.resolve() for path in written)]
    items: list[Item] = []
    taken: set[Path] = set()
    seen: set[Path] = set()
    for argument in arguments:
        before = len(skipped)
        base, found = _expand(argument, skip, skipped)
        files = [(source, source.resolve()) for source in found if not _written_here(source, skip)]
        skipped.extend(Skipped(source, _written_reason(source, skip)) for source in found
                       if _written_here(source, skip))
        if not files:
            ours = any(entry.reason in (INSIDE_OUT, REPORT_FILES) for entry in skipped[before:])
            raise InputRejected(_no_images_message(argument, out_dir, outputs_only=ours))
        for source, resolved in files:
            if resolved in seen:
                continue
            seen.add(resolved)
            relative = source.relative_to(base)
            output = _mirrored(out_dir, relative.with_suffix(f".{fmt}"))
            if output in taken:  # photo.jpg and photo.png in one folder: keep both results
                output = _mirrored(out_dir, relative.with_name(f"{relative.stem}_{relative.suffix.lstrip('.')}.{fmt}"))
            taken.add(output)
            items.append(Item(source, output, _escape_problem(source, output, out_dir, out_root), relative.as_posix()))
    return items


def _mirrored(out_dir: Path, relative: Path) -> Path:
    """`relative` below the output folder, without '..' left in it (a later mkdir would create the
    folders the '..' climbs out of)."""
    return Path(os.path.normpath(out_dir / relative))


def _escape_problem(source: Path, output: Path, out_dir: Path, out_root: Path) -> str | None:
    if out_root in output.resolve().parents:
        return None
    return (
        f"Refused {source}: its output {output} would be written outside --out {out_dir} (the input path "
        "climbs out with '..' or through a link). Nothing was sent for it. Use a pattern that stays below "
        "the folder it starts in, e.g. 'photos/**/*.jpg'."
    )


def _no_images_message(argument: str, out_dir: Path, *, outputs_only: bool) -> str:
    if outputs_only:
        return (
            f"Input {argument!r} holds only files inside the output folder {out_dir} or a report's own files, "
            "which are results, not inputs. Give the folder of the original photos, or another --out or --report."
        )
    return (f"Input {argument!r} holds no photos of a format the pack reads (JPEG, PNG, WebP, HEIC, AVIF, TIFF, "
            "GIF, BMP...).")


def skipped_line(skipped: list[Skipped], *, names: int = 10) -> str:
    """The summary's line for the files met but not read: "Not read: 2 not an image (.txt) (notes.txt,
    a.json), 1 inside --out: ... (out)". The first `names` of each reason; the report lists every one."""
    if not skipped:
        return ""
    by_reason: dict[str, list[str]] = {}
    for entry in skipped:
        by_reason.setdefault(entry.reason, []).append(str(entry.path))
    parts = []
    for reason, paths in by_reason.items():
        shown = ", ".join(paths[:names]) + (f", and {len(paths) - names} more" if len(paths) > names else "")
        parts.append(f"{len(paths)} {reason}: {shown}")
    return f"Not read ({len(skipped)} file(s) in the inputs): " + "; ".join(parts) + "."


def is_done(item: Item) -> bool:
    """A finished output exists (atomic writes guarantee a present file is a complete one)."""
    try:
        return item.output.stat().st_size > 0
    except OSError:
        return False


def save_result(result: IsolationResult, path: Path, fmt: str) -> None:
    """Write a result as rendered (`PostProcessing.render_result`), tagged sRGB; a PNG as the service sent it
    is copied byte for byte but for the sRGB profile chunk (re-encoding a 1K PNG takes ~26 ms, which on one
    thread would cap a catalogue run at ~40 images a second). A rendering that changed pixels dropped those
    bytes, so its image is encoded."""
    if fmt == "png" and result.image_bytes.startswith(result_images.PNG_SIGNATURE):
        atomic_write(path, colour.tag_png(result.image_bytes), durable=False, mode=LIKE_ANY_FILE)
    else:
        write_atomically(result.image, path, fmt)


def numbered_outputs(path: Path, count: int) -> list[Path]:
    """Where the images of one input go when its run returned several: `name.png`, `name-2.png`, ..."""
    return [path] + [path.with_name(f"{path.stem}-{number}{path.suffix}") for number in range(2, count + 1)]


def save_all(result: IsolationResult, path: Path, fmt: str) -> list[Path]:
    """Write every image of a result (see `numbered_outputs`); the later images first, so that `path`,
    whose presence marks the input as done, is written last."""
    paths = numbered_outputs(path, len(result.images))
    for view, target in reversed(list(zip(result.per_image(), paths, strict=True))):
        save_result(view, target, fmt)
    return paths


def write_atomically(image: Image.Image, path: Path, fmt: str) -> None:
    """Encode in memory, then replace `path` through a randomly named temporary file (fsutil): a name
    another user could predict inside --out could be planted as a link and written through. Tagged sRGB.
    Outputs get the mode any file the user makes gets (0666 minus the umask), not the temporary file's."""
    buffer = io.BytesIO()
    if fmt == "webp":
        image.save(buffer, format="WEBP", quality=92, method=4, exact=True, icc_profile=colour.srgb_icc())
    else:
        image.save(buffer, format="PNG", compress_level=3, icc_profile=colour.srgb_icc())
    atomic_write(path, buffer.getvalue(), durable=False, mode=LIKE_ANY_FILE)
