"""The contact sheet's thumbnails, made when an output is written: the sheet is a rendering too.

`--report x.html` shows every input's photo and result as 256 px thumbnails. Decoding 2,000 outputs and
photos again only to shrink them took about a minute; the output is in memory when the CLI writes it,
and its QA flags are known then, so its thumbnails are made there (`for_output`, a few ms from pixels at
hand) and kept in the output folder (`.runflow-thumbs/`, mirroring the outputs), with their sizes and the
flags in the output's record (`renderings.py`). The report then copies small files. A row without
made thumbnails (an output written by an older version, or before a report was asked for) falls back
to `save_thumbnail` from the files, as before.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from ..pictures import colour, images
from ..settings.fsutil import LIKE_ANY_FILE, atomic_write

THUMB_SIDE = 256  # longest side of a thumbnail, in pixels
THUMB_QUALITY = 70  # WebP quality: a 256 px product photo is about 5-10 KB
FOLDER = ".runflow-thumbs"


def copy_or_make(made: dict[str, Any] | None, side: str, source: str | None, target: Path) -> tuple[int, int] | None:
    """A report's thumbnail at `target`: a copy of the one made when the output was written (`made[side]`:
    its path, width and height, from the output's record), else made from `source`; its size, or None when
    there is no image to show."""
    kept = (made or {}).get(side)
    if kept is not None:
        try:
            shutil.copyfile(kept[0], target)
            return int(kept[1]), int(kept[2])
        except OSError:
            pass  # removed since: made again from the file below
    return save_thumbnail(source, target) if source else None


def save_thumbnail(image: Image.Image | str | Path, target: Path) -> tuple[int, int] | None:
    """Write a WebP thumbnail (alpha kept) of an image, or of a file (a JPEG is decoded at a reduced
    scale), to `target`; its size, or None when it cannot be made for any reason (the card then says
    "no image"): Pillow reports a damaged PNG chunk as SyntaxError, and one bad file must not cost the report."""
    try:
        if isinstance(image, Image.Image):
            return _save(image.copy(), target)
        with Image.open(image) as opened:
            opened.draft("RGB", (THUMB_SIDE, THUMB_SIDE))
            return _save(ImageOps.exif_transpose(opened), target)
    except Exception:
        return None


def _save(image: Image.Image, target: Path) -> tuple[int, int]:
    image.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BILINEAR)
    image = images.in_srgb(image)  # RGB(A) in sRGB, as a photo is read for its upload
    encoded = io.BytesIO()
    image.save(encoded, format="WEBP", quality=THUMB_QUALITY, method=2, icc_profile=colour.srgb_icc())
    # Replaced whole (machines of a fleet sharing --out may write the same thumbnail), through a randomly
    # named temporary file: never written through a link planted at the predictable name.
    atomic_write(target, encoded.getvalue(), durable=False, mode=LIKE_ANY_FILE)
    return image.size


def for_output(out_dir: Path, output: Path, source: Path, image: Image.Image) -> dict[str, Any]:
    """Both thumbnails of an output just written, from its image in memory and its photo: what the
    output's record keeps ({"in": [path, width, height] | None, "out": ...}, paths below `out_dir`)."""
    stem = Path(FOLDER, os.path.relpath(output, out_dir))
    made: dict[str, Any] = {}
    for side, picture in (("in", source), ("out", image)):
        relative = stem.with_name(f"{stem.name}.{side}.webp")
        size = save_thumbnail(picture, out_dir / relative)
        made[side] = None if size is None else [relative.as_posix(), *size]
    return made
