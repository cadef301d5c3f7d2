"""Which photo files the pack reads: Pillow's own formats (AVIF included), and HEIC/HEIF through the
optional `pillow-heif`.

An iPhone saves HEIC by default. Pillow cannot read it; `pillow-heif` adds an opener to Pillow. It is an
extra (`pip install pillow-heif`), not a dependency: its wheels bundle libheif and the x265 encoder
(LGPL/GPL code the pack would otherwise pull into every install), and a platform or Python version
without a wheel would fail the whole pack's install rather than only HEIC. Without it, a HEIC photo is
refused with the command that installs it, never skipped or called "not an image".

The opener is registered lazily, on the first read (`ensure_openers`), so importing the pack does not
import pillow-heif, and a pillow-heif that fails to load only means HEIC is unavailable (with a warning).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from PIL import Image

log = logging.getLogger("runflow_api")

HEIF_INSTALL = "pip install pillow-heif"
HEIF_SUFFIXES = frozenset({".heic", ".heif", ".hif", ".heics", ".heifs"})
# ISO base media "ftyp" brands of HEIF stills and sequences (an AVIF's are "avif"/"avis", which Pillow reads).
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"})
# Suffixes Pillow registers for formats that are not photos a seller would isolate, or that it can open but
# only with an outside program (EPS needs Ghostscript) or not at all (Pillow only identifies MPEG video):
# never picked up from a folder.
_NOT_PHOTOS = frozenset({".eps", ".ps", ".pdf", ".fits", ".fit", ".grib", ".h5", ".hdf", ".bufr", ".wmf", ".emf",
                         ".mpeg", ".mpg"})


@functools.cache
def ensure_openers() -> bool:
    """Register pillow-heif's HEIC/HEIF opener with Pillow, once; whether HEIC can be read."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    try:
        register_heif_opener()
    except Exception as exc:  # a broken install must not break reading every other format
        log.warning("pillow-heif is installed but could not be loaded (%s); HEIC photos cannot be read.", exc)
        return False
    return True


def heif_available() -> bool:
    return ensure_openers()


def is_heif(header: bytes) -> bool:
    """Whether the first bytes of a file are those of a HEIF image (HEIC, HEIF), not an AVIF: `ftyp` at
    byte 4, then a HEIF major brand (or "mif1" with a HEVC brand among the compatible ones)."""
    if len(header) < 12 or header[4:8] != b"ftyp":
        return False
    brands = {header[8:12]} | {header[offset:offset + 4] for offset in range(16, min(len(header), 64) - 3, 4)}
    if brands & {b"avif", b"avis"}:
        return False
    return bool(brands & _HEIF_BRANDS)


def heif_refusal(name: str, source: str) -> str:
    """The message for a HEIC photo while pillow-heif is missing: what it is and the command to run."""
    return (f"{name}: {source} is a HEIC/HEIF photo (an iPhone's format), which needs pillow-heif to be read. "
            f"Install it with `{HEIF_INSTALL}` in the Python that runs the pack, or export the photo as JPEG.")


def readable_suffixes() -> frozenset[str]:
    """Every file suffix of a format the readers can open: Pillow's openers (AVIF and TIFF included), and
    HEIC/HEIF always (without pillow-heif such a file is refused with the install command, not skipped)."""
    ensure_openers()
    extensions = Image.registered_extensions()
    openable = {suffix for suffix, format_id in extensions.items() if format_id in Image.OPEN}
    return frozenset(openable - _NOT_PHOTOS) | HEIF_SUFFIXES


def readable(path: Path) -> bool:
    return path.suffix.lower() in readable_suffixes()
