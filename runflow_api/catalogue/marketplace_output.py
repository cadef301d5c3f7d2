"""Where a catalogue's marketplace files go, and writing them: `OUT/<preset>/<the input's relative path,
with the preset's extension>`, so `photos/shoes/red.png` becomes `OUT/amazon/shoes/red.jpg`.

Each preset gets its own folder, so one photo's files never collide and a marketplace's upload is one
folder. Paths are resolved and must stay inside their preset's folder (a relative path with `..` would
otherwise write elsewhere); files are written atomically, as the catalogue's results are, so a Ctrl-C
never leaves half a JPEG that a re-run would take for a finished file.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

from ..errors import InputRejected
from ..pictures.marketplace_presets import Preset
from ..pictures.marketplace_render import Rendering
from ..settings.fsutil import atomic_write


def output_path(out_dir: Path, preset: Preset, relative: str | PurePath) -> Path:
    """`out_dir/<preset>/<relative>` with the preset's extension; refused when it would leave the folder."""
    folder = (out_dir / preset.name).resolve()
    target = (folder / PurePath(relative)).with_suffix(preset.extension).resolve()
    if target == folder or not target.is_relative_to(folder):
        raise InputRejected(f"The {preset.name} file for {str(relative)!r} would be written outside {folder}. "
                            "Give inputs below their folder (no '..' in their relative paths).")
    return target


def write(rendering: Rendering, path: Path) -> Path:
    """Write a rendering's bytes (atomically; the folders are made as needed) and return the path."""
    atomic_write(path, rendering.data, durable=False)
    return path


def report(renderings: list[Rendering], paths: list[Path] | None = None) -> dict[str, dict[str, Any]]:
    """The JSON report's `formats` entry of one photo: preset name -> its flags and measurements (and the
    file written, when given)."""
    entries: dict[str, dict[str, Any]] = {}
    for number, rendering in enumerate(renderings):
        entry = rendering.report()
        if paths is not None:
            entry["path"] = str(paths[number])
        entries[rendering.preset.name] = entry
    return entries
