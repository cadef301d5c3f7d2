"""Marketplace files from a stored result: the library's face of the presets (docs/marketplace.md).

    from runflow_api import RunflowClient, list_presets, render_preset
    with RunflowClient() as client:
        result = client.isolate("shoe.jpg", resolution="4K")
    for preset in list_presets():
        rendering = render_preset(result, preset.name)      # free: no run is paid for it
        Path(f"{preset.name}{rendering.extension}").write_bytes(rendering.data)
        print(preset.name, rendering.flags)                 # compliance flags, [] when every check passed

The work is in `marketplace_presets` (what a preset is), `marketplace_render` (the file) and
`marketplace_checks` (its flags); this module resolves names and prints the `formats` table.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from . import marketplace_presets, marketplace_render
from .edges import EDGES_CLEAN
from .marketplace_presets import Preset
from .marketplace_render import Rendering
from .result_types import IsolationResult
from .shadows import SHADOW_NONE

TABLE_COLUMNS = ("name", "canvas", "background", "fill", "format", "cap", "source")


def list_presets() -> list[Preset]:
    """The shipped presets, in the data file's order."""
    return list(marketplace_presets.builtin().values())


def preset_named(preset: str | Preset) -> Preset:
    """A preset by shipped name, a custom preset string ('1200x1500,fill=0.8,...'), or a Preset as is."""
    if isinstance(preset, Preset):
        return preset
    shipped = marketplace_presets.builtin()
    if preset.strip().lower() in shipped:
        return shipped[preset.strip().lower()]
    if any(character.isdigit() for character in preset.split(",")[0]) or "," in preset:
        return marketplace_presets.parse_custom(preset)
    return marketplace_presets.select(preset)[0]  # refuses an unknown name, listing the known ones


def render_preset(result: IsolationResult | Image.Image | np.ndarray, preset: str | Preset, *,
                  edges: str = EDGES_CLEAN) -> Rendering:
    """One preset's file (`.data`, `.extension`, `.flags`, `.report()`) from a stored result."""
    return marketplace_render.render(result, preset_named(preset), edges=edges)


def render_presets(result: IsolationResult | Image.Image | np.ndarray, presets: list[str | Preset], *,
                   edges: str = EDGES_CLEAN) -> list[Rendering]:
    """Several presets' files from one result; the product is cut and cleaned once for all of them."""
    return marketplace_render.render_all(result, [preset_named(preset) for preset in presets], edges=edges)


def table_rows(presets: list[Preset] | None = None) -> list[tuple[str, ...]]:
    """The `formats` table: one row of text per preset, in TABLE_COLUMNS order."""
    rows: list[tuple[str, ...]] = []
    for preset in list_presets() if presets is None else presets:
        if abs(preset.fill_max - preset.fill_min - 2 * marketplace_presets.FILL_TOLERANCE) < 1e-9:
            fill = f"{preset.fill:.0%}"
        else:
            fill = f"{preset.fill_min:.0%}-{preset.fill_max:.0%}"
        cap = "none" if preset.cap is None else f"{preset.cap / 1e6:g} MB"
        source = f"{preset.source} (checked {preset.checked})" if preset.checked else preset.source
        background = preset.background_hex
        if preset.shadow.mode != SHADOW_NONE:
            background += f" + {preset.shadow.mode} shadow"
        rows.append((preset.name, f"{preset.width}x{preset.height}", background, fill,
                     preset.format.upper(), cap, source))
    return rows


def format_table(presets: list[Preset] | None = None) -> str:
    """The table `python -m runflow_api formats` prints, columns aligned."""
    rows = [TABLE_COLUMNS, *table_rows(presets)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(TABLE_COLUMNS) - 1)]
    return "\n".join("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
                     for row in rows)
