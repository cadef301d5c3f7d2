"""`--report x.html`: a contact sheet of the whole catalogue, to look at instead of opening 2,000 files.

One card per input: the photo, the result over a checkerboard, name, run id, cost, time, how it was
obtained (paid, cached, collected, an earlier run) and its QA flags; failures with their reasons; totals
and filters at the top. Plain HTML, inline CSS and a little inline JavaScript, nothing fetched: it opens
by double-click from disk (`file://`). Thumbnails (at most 256 px, WebP) go in a folder beside the report
(`x-thumbs/`) and load lazily, so the page itself stays small and paints at once with thousands of cards. They are
copies of the thumbnails the CLI made when it wrote each output (`contact_thumbs`), so nothing is decoded
again; only a row without them (an output from an older version) has its files decoded here.
`flag_skipped` serves both report formats: the inputs an earlier run finished are judged from their files.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..pictures import qa
from . import report_formats
from .contact_thumbs import copy_or_make

SUFFIXES = (".html", ".htm")
# "12-in.webp": row 12's photo; "12-out.webp": its result; "12-f0.webp": its first marketplace file (--formats)
THUMB_NAME = re.compile(r"\d+-(in|out|f\d+)\.webp")
THUMBS_SUFFIX = "-thumbs"  # x.html keeps its thumbnails in x-thumbs/ beside it
STATUS_LABELS = {"done": "paid", "collected": "collected", "cached": "cached", "skipped": "earlier run",
                 "failed": "failed"}


def thumbs_folder(report: Path) -> Path:
    """The folder beside `report` that holds its thumbnails."""
    return report.with_name(f"{report.stem}{THUMBS_SUFFIX}")


def own_paths(report: Path | None) -> list[Path]:
    """What writing `report` creates: the report and its thumbnail folder (the catalogue never reads
    them as photos, or every run would pay for the thumbnails the previous one made)."""
    return [] if report is None else [report, thumbs_folder(report)]


def is_thumbs_folder(folder: Path) -> bool:
    """`folder` is an HTML report's thumbnail folder (`x-thumbs` beside `x.html`), whichever earlier
    command wrote it under whichever name: its pictures are never photos to isolate."""
    stem = folder.name.removesuffix(THUMBS_SUFFIX)
    return stem != folder.name and any(folder.with_name(stem + ext).is_file() for ext in (".html", ".htm"))


def _workers() -> int:
    return min(8, os.cpu_count() or 1)


def _in_parallel(work: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """Decoding and encoding images release the GIL: threads keep a 2,000-item report to seconds."""
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        return list(pool.map(work, items))


def _saved_flags(path: str) -> list[str] | None:
    """The flags of an earlier run's output; None when it cannot be read or has no alpha to judge. Any
    failure counts as unreadable: Pillow reports a damaged PNG chunk as SyntaxError, and one bad file
    must not cost the report of the whole catalogue."""
    try:
        return qa.file_flags(path)
    except Exception:
        return None


def flag_skipped(rows: list[dict[str, Any]]) -> None:
    """Give the rows of inputs finished by an earlier run the flags of their saved outputs, so a report
    covers the whole catalogue, not only this run's share of it."""
    skipped = [row for row in rows if row["status"] == "skipped" and "flags" not in row]
    for row, found in zip(skipped, _in_parallel(_saved_flags, [row["output"] for row in skipped]), strict=True):
        row["flags"] = found


def _status(row: dict[str, Any]) -> str:
    if row["status"] == "done" and row.get("resumed"):
        return "collected"
    return str(row["status"])


def _result_path(row: dict[str, Any]) -> str | None:
    outputs = row.get("outputs") or ([row["output"]] if row["status"] == "skipped" else [])
    return outputs[0] if outputs else None


def _img(folder: str, name: str, size: tuple[int, int] | None, alt: str) -> str:
    if size is None:
        return '<span class="none">no image</span>'
    src = f"{quote(folder)}/{name}"
    return (f'<img src="{src}" width="{size[0]}" height="{size[1]}" loading="lazy" decoding="async" '
            f'alt="{html.escape(alt)}">')


def _card(index: int, row: dict[str, Any], folder: str, sizes: tuple[Any, Any], emulator: bool,
          formats: str = "") -> str:
    status = _status(row)
    flags = row.get("flags") or []
    name = row.get("name") or Path(row["input"]).name
    facts = []
    if row.get("run_id"):
        facts.append(f'<span class="run">{html.escape(row["run_id"])}</span>')
    if row.get("cost") is not None:
        facts.append("free" if emulator and status != "skipped" else f'${html.escape(row["cost"])}')
    if row.get("seconds") is not None:
        facts.append(f'{row["seconds"]:.1f} s')
    chips = "".join(f'<b class="flag">{html.escape(flag)}</b>' for flag in flags)
    error = f'<p class="error">{html.escape(row["error"])}</p>' if row.get("error") else ""
    return (
        f'<figure class="card" data-status="{status}" data-flags="{" ".join(flags)}">'
        f'<div class="pair">{_img(folder, f"{index}-in.webp", sizes[0], "photo")}'
        f'<div class="checker">{_img(folder, f"{index}-out.webp", sizes[1], "result")}</div></div>'
        f'<figcaption><span class="name" title="{html.escape(row["input"])}">{html.escape(name)}</span>'
        f'<span class="status s-{status}">{STATUS_LABELS.get(status, status)}</span>{chips}'
        f'<span class="facts">{" · ".join(facts)}</span>{error}</figcaption>{formats}</figure>'
    )


def _thumbnails(rows: list[dict[str, Any]], folder: Path) -> list[tuple[Any, Any]]:
    """Both thumbnails of every row, made in parallel. The thumbnails an earlier report left in the folder
    are removed first (only files named as this module names them), so it never shows a stale picture."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.webp"):
        if THUMB_NAME.fullmatch(stale.name):
            stale.unlink()
    jobs = []
    for index, row in enumerate(rows):
        made = row.get("thumbnails")
        jobs.append((made, "in", row["input"], folder / f"{index}-in.webp"))
        jobs.append((made, "out", _result_path(row), folder / f"{index}-out.webp"))
    sizes = _in_parallel(lambda job: copy_or_make(*job), jobs)
    return list(zip(sizes[0::2], sizes[1::2], strict=True))


def _filters(rows: list[dict[str, Any]]) -> str:
    statuses = sorted({_status(row) for row in rows}, key=list(STATUS_LABELS).index)
    flag_counts = {flag: sum(flag in (row.get("flags") or []) for row in rows) for flag in qa.ALL_FLAGS}
    status_options = "".join(
        f'<option value="{status}">{STATUS_LABELS[status]} ({sum(_status(row) == status for row in rows)})</option>'
        for status in statuses
    )
    flag_options = "".join(f'<option value="{flag}">{flag} ({count})</option>'
                           for flag, count in flag_counts.items() if count)
    flagged = sum(bool(row.get("flags")) for row in rows)
    return (
        '<label>Status <select id="status"><option value="">all</option>'
        f"{status_options}</select></label>"
        '<label>Flags <select id="flag"><option value="">any</option>'
        f'<option value="*">flagged ({flagged})</option><option value="-">not flagged ({len(rows) - flagged})</option>'
        f'{flag_options}</select></label><span id="shown"></span>'
    )


def _totals(summary: dict[str, Any]) -> str:
    cost = "free (emulator)" if summary["emulator"] else f'${summary["cost"]}'
    parts = [
        f'{summary["total"]} inputs', f'{summary["done"]} done', f'{summary["cached"]} cached',
        f'{summary["skipped"]} from earlier runs', f'{summary["failed"]} failed',
        f'{summary["flagged"]} flagged', cost, f'{summary["seconds"]:.1f} s',
    ]
    return "".join(f"<span>{part}</span>" for part in parts)


def _failures(rows: list[dict[str, Any]]) -> str:
    failed = [row for row in rows if row["status"] == "failed"]
    if not failed:
        return ""
    items = "".join(f'<li><b>{html.escape(row.get("name") or row["input"])}</b>: {html.escape(row.get("error") or "")}'
                    "</li>" for row in failed)
    return f'<details class="failures" open><summary>{len(failed)} failed</summary><ul>{items}</ul></details>'


def _not_read(report: dict[str, Any]) -> str:
    """The files of the inputs that were not read, each with its reason (none is left out silently)."""
    entries = report.get("not_read") or []
    if not entries:
        return ""
    items = "".join(f'<li><b>{html.escape(entry["path"])}</b>: {html.escape(entry["reason"])}</li>'
                    for entry in entries)
    return f'<details class="not-read"><summary>{len(entries)} not read</summary><ul>{items}</ul></details>'


STYLE = """
body{font:13px system-ui,sans-serif;margin:0;background:#f4f4f5;color:#18181b}
header{position:sticky;top:0;z-index:1;background:#fff;border-bottom:1px solid #ddd;padding:8px 16px}
h1{font-size:16px;margin:0 0 4px}.totals span+span:before{content:" · "}
label{margin-right:12px}#shown{color:#666}
.failures{margin:8px 16px;color:#991b1b}.not-read{margin:8px 16px;color:#555}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:8px;padding:8px 16px}
.card{margin:0;background:#fff;border:1px solid #e4e4e7;border-radius:6px;padding:6px;
content-visibility:auto;contain-intrinsic-size:auto 210px}
.card[hidden]{display:none}
.pair{display:flex;gap:4px}.pair>*{flex:1;height:128px;display:flex;align-items:center;justify-content:center}
.pair img{max-width:100%;max-height:128px;width:auto;height:auto}
.checker{background:repeating-conic-gradient(#ccc 0 25%,#fff 0 50%) 0 0/16px 16px}
.none{color:#999}
figcaption{display:flex;flex-wrap:wrap;gap:4px;align-items:center;margin-top:4px}
.name{font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;max-width:100%}
.status{border-radius:3px;padding:0 4px;background:#e4e4e7}.s-failed{background:#fecaca}
.s-cached,.s-skipped{background:#dbeafe}.s-collected{background:#fef3c7}
.flag{background:#f97316;color:#fff;border-radius:3px;padding:0 4px;font-weight:600}
.facts{color:#555;width:100%;overflow-wrap:anywhere}.run{font-family:monospace}
.error,.failures li{color:#991b1b;margin:0;overflow-wrap:anywhere}
"""

SCRIPT = """
(function(){
var cards=Array.prototype.slice.call(document.querySelectorAll('.card'));
var status=document.getElementById('status'),flag=document.getElementById('flag');
var shown=document.getElementById('shown');
function apply(){
var s=status.value,f=flag.value,n=0;
cards.forEach(function(card){
var flags=card.dataset.flags?card.dataset.flags.split(' '):[];
var ok=(!s||card.dataset.status===s)&&(!f||(f==='*'?flags.length>0:f==='-'?flags.length===0:flags.indexOf(f)>=0));
card.hidden=!ok;if(ok)n++;});
shown.textContent=n+' of '+cards.length+' shown';}
status.addEventListener('change',apply);flag.addEventListener('change',apply);apply();
})();
"""


def write(path: Path, report: dict[str, Any]) -> None:
    """Write the contact sheet for a CLI report ({"summary": ..., "items": [...]}) to `path`, and its
    thumbnails to the folder `<name>-thumbs` beside it."""
    rows = report["items"]
    summary = report["summary"]
    folder = thumbs_folder(path)
    sizes = _thumbnails(rows, folder)
    strips = _in_parallel(lambda index: report_formats.strip(index, rows[index], folder), range(len(rows)))
    cards = "".join(_card(index, row, folder.name, sizes[index], summary["emulator"], strips[index])
                    for index, row in enumerate(rows))
    title = f"Runflow catalogue report: {summary['total']} inputs"
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width"><style>{STYLE}{report_formats.STYLE}</style></head><body>'
        f'<header><h1>{html.escape(title)}</h1><p class="totals">{_totals(summary)}</p>'
        f"<div>{_filters(rows)}</div></header>{_failures(rows)}{_not_read(report)}<main>{cards}</main>"
        f"<script>{SCRIPT}</script></body></html>"
    )
    path.write_text(page, encoding="utf-8")

