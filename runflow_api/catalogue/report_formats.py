"""The contact sheet's marketplace files (`isolate --formats --report x.html`): under each photo's card, a
thumbnail per preset's file with the preset's name and its compliance flags, so a file that fails a
marketplace's rule is seen beside the QA flags of its photo.

The thumbnails are copies of those made when each file was written (`marketplace_catalogue`), named
`<row>-f<k>.webp` in the report's thumbnail folder; a file without one (written by an older version) is
decoded here.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .contact_thumbs import copy_or_make


def strip(index: int, row: dict[str, Any], folder: Path) -> str:
    """The HTML of one row's marketplace files (empty without any), its thumbnails placed in `folder`."""
    entries = row.get("formats") or {}
    figures = []
    for number, (name, entry) in enumerate(entries.items()):
        thumb = f"{index}-f{number}.webp"
        size = copy_or_make(entry.get("thumbnails"), "out", entry.get("path"), folder / thumb)
        picture = ('<span class="none">no file</span>' if size is None else
                   f'<img src="{quote(folder.name)}/{thumb}" width="{size[0]}" height="{size[1]}" loading="lazy" '
                   f'decoding="async" alt="{html.escape(name)}">')
        chips = "".join(f'<b class="flag">{html.escape(flag)}</b>' for flag in entry.get("flags") or [])
        figures.append(f'<span class="format" title="{html.escape(str(entry.get("path", "")))}">{picture}'
                       f"<small>{html.escape(name)}</small>{chips}</span>")
    return f'<div class="formats">{"".join(figures)}</div>' if figures else ""


STYLE = """
.formats{display:flex;flex-wrap:wrap;gap:4px;margin-top:4px}
.format{display:flex;flex-direction:column;align-items:center;width:60px;font-size:11px}
.format img{max-width:60px;max-height:60px;width:auto;height:auto;outline:1px solid #ddd}
"""
