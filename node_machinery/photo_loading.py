"""Runflow Load Photo: a photo from ComfyUI's input folder as IMAGE and MASK, read the way the engine reads it.

ComfyUI's own LoadImage drops an embedded colour profile (an iPhone's Display P3 numbers then pass for
sRGB, 13-17 ΔE76 off on a red) and cannot open HEIC. This node reads the file through the engine's
`images.to_array`: HEIC/HEIF (with pillow-heif) and AVIF, EXIF orientation applied, the profile converted
to sRGB, the same pixels (so the same cache key) as the CLI gets from the same file. The MASK has
LoadImage's polarity (1 where the photo is transparent), so it drops in wherever LoadImage's did.

Which files: those of the input folder whose format the readers open (`formats.readable_suffixes`),
like LoadImage's list (top level only). A name may carry ComfyUI's annotation (`photo.png [output]`),
and never leaves those folders. Outside ComfyUI (scripts, tests) the input folder is `./input`.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from ..runflow_api.errors import InputRejected
from ..runflow_api.pictures import formats, images
from .spec import NodeResult

_ANNOTATION = re.compile(r"^(?P<name>.*?)\s*\[(?P<folder>input|output|temp)\]$")
_READ_CHUNK = 1 << 20


def _folder_paths() -> ModuleType | None:
    """ComfyUI's `folder_paths`, or None outside ComfyUI."""
    try:
        return importlib.import_module("folder_paths")
    except ImportError:
        return None


def _folder(kind: str) -> Path:
    """ComfyUI's input, output or temp folder (`./input` etc. outside ComfyUI)."""
    paths = _folder_paths()
    if paths is None:
        return Path(kind).resolve()
    return Path(getattr(paths, f"get_{kind}_directory")()).resolve()


def input_photos() -> tuple[str, ...]:
    """The dropdown: the files at the top of the input folder that the readers open, sorted; ("",)
    when there are none (a COMBO needs a choice: the node then asks for an upload)."""
    folder = _folder("input")
    try:
        names = sorted(entry.name for entry in folder.iterdir() if entry.is_file() and formats.readable(entry))
    except OSError:
        names = []
    return tuple(names) or ("",)


def photo_path(name: str) -> Path:
    """The file a dropdown value names: below the input folder, or the output or temp folder for
    `name [output]` / `name [temp]`. Refused when empty, missing, or outside that folder."""
    if not name or not name.strip():
        raise InputRejected("Input 'image' is empty: upload a photo with the node's upload button, or put one in "
                            f"ComfyUI's input folder ({_folder('input')}).")
    annotated = _ANNOTATION.match(name)
    folder = _folder(annotated["folder"] if annotated else "input")
    path = (folder / (annotated["name"] if annotated else name)).resolve()
    if not path.is_relative_to(folder):
        raise InputRejected(f"Input 'image' names {name!r}, which is outside ComfyUI's {folder.name} folder.")
    if not path.is_file():
        raise InputRejected(f"Input 'image': {name!r} is not in ComfyUI's {folder.name} folder ({folder}). Upload "
                            "it again, or pick another photo.")
    return path


def photo_fingerprint(cls: type, image: str = "", **_: Any) -> str:
    """ComfyUI re-runs the node when this changes: the file's bytes (a photo replaced under the same
    name is read again), as LoadImage does."""
    try:
        path = photo_path(image)
    except InputRejected as exc:
        return exc.message  # validation says it; the fingerprint only has to change with it
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def photo_validate(cls: type, image: str = "") -> bool | str:
    """Refuse a missing file before the queue runs. Naming `image` here also lets a value that is not in
    the dropdown (an annotated `name [output]`, a file added since the page loaded) through ComfyUI's
    own check, as LoadImage does."""
    try:
        photo_path(image)
    except InputRejected as exc:
        return exc.message
    return True


def load_photo(image: str, *, unique_id: str | None = None) -> NodeResult:
    """Runflow Load Photo: (IMAGE [1, H, W, 3], MASK [1, H, W]) of the named photo, in sRGB and upright.
    The mask is 1 where the photo is transparent, 0 where opaque (all 0 without alpha), as LoadImage's.
    `unique_id` is the hidden input every Runflow node is given; reading a file reports no progress."""
    path = photo_path(image)
    pixels = images.to_array(path, name=f"Input 'image' ({path.name})")
    rgb = torch.from_numpy(pixels[:, :, :3].astype(np.float32)).div_(255.0)  # astype: a writable copy
    if pixels.shape[2] == 4:
        mask = 1.0 - torch.from_numpy(pixels[:, :, 3].astype(np.float32)).div_(255.0)
    else:
        mask = torch.zeros(pixels.shape[:2], dtype=torch.float32)
    return NodeResult((rgb.unsqueeze(0), mask.unsqueeze(0)))
