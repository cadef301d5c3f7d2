"""What made each output of a catalogue: the stored result (its cache key) and the rendering options.

An output file is a function of two things, the stored service result and the rendering options
(`post_processing.PostProcessing`). The CLI records both for every output it writes, so that a re-run of
the same command knows what to do with an output that is there: the same options, nothing (no file is
touched); other options, re-render it from the stored result (0 paid runs); no record, keep it (an output
written before records were kept, or by hand: its options are unknown, and `--rewrite` re-renders it).

The record is one file in the output folder, `.runflow-renderings.jsonl`, one JSON line per output
written; the last line about an output wins. Append-only on purpose: one small line per output costs the
same at item 10 and item 10,000, and machines of a fleet sharing one `--out` append without reading or
rewriting each other's lines (a manifest rewritten whole would cost O(n) per output and lose concurrent
updates). A sidecar file per output would double the files users see in their catalogue. A damaged line
is ignored (that output is then "unknown", so kept). Each line also keeps what a report shows of the
output, known when it was written: its QA flags and its contact-sheet thumbnails (`contact_thumbs.py`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..pictures.post_processing import PostProcessing
from ..pictures.result_types import IsolationResult
from . import contact_thumbs

RECORD_NAME = ".runflow-renderings.jsonl"
# Appending never follows a link planted under the record's (predictable) name in a shared --out.
_APPEND_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)

SAME, DIFFERENT, UNKNOWN = "same", "different", "unknown"


class Renderings:
    """The record of one output folder: read once when a command starts, appended as outputs are written."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.path = out_dir / RECORD_NAME
        self._made: dict[str, dict[str, Any]] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        for line in lines:
            try:
                entry = json.loads(line)
                self._made[str(entry["output"])] = {"key": str(entry["key"]), "rendering": dict(entry["rendering"]),
                                                    "facts": dict(entry.get("facts") or {})}
            except (ValueError, KeyError, TypeError):
                continue

    def _name(self, output: Path) -> str:
        return Path(os.path.relpath(output, self.out_dir)).as_posix()

    def compare(self, output: Path, rendering: PostProcessing) -> str:
        """SAME, DIFFERENT or UNKNOWN: how the options that made `output` compare with `rendering`. An
        option added since the output was written counts at its default (which renders as before)."""
        made = self._made.get(self._name(output))
        if made is None:
            return UNKNOWN
        defaults = PostProcessing().record()
        return SAME if {**defaults, **made["rendering"]} == rendering.record() else DIFFERENT

    def made_as(self, output: Path, made: dict[str, Any]) -> bool:
        """Whether `output` is recorded as made exactly as `made` says (a file that is not a rendering of
        `PostProcessing`, such as a marketplace preset's: `marketplace_catalogue`)."""
        recorded = self._made.get(self._name(output))
        return recorded is not None and recorded["rendering"] == made

    def record(self, output: Path, key: str, made: dict[str, Any], facts: dict[str, Any]) -> None:
        """Record that `output` was just written from the stored result `key`, as `made` says, with the
        `facts` a report shows of it (thumbnail paths relative to the output folder)."""
        name = self._name(output)
        self._made[name] = {"key": key, "rendering": made, "facts": facts}
        self._append({"output": name, "key": key, "rendering": made, "facts": facts})

    def facts(self, output: Path) -> dict[str, Any]:
        """What was known of `output` when it was written, for its report row: its QA `flags` and its
        contact-sheet `thumbnails` ({"in"/"out": [path, width, height] or None}), so a report covers it
        without decoding it again; empty when it has no record."""
        made = self._made.get(self._name(output))
        return self._placed(made["facts"]) if made else {}

    def written(self, output: Path, source: Path, result: IsolationResult, rendering: PostProcessing, *,
                thumbnails: bool) -> dict[str, Any]:
        """Record that `output` was just written from `result` (the photo `source`'s, as `rendering` drew it)
        and what a report shows of it, its thumbnails made now from the pixels at hand when asked; those
        facts, as `facts()` gives them."""
        facts: dict[str, Any] = {"flags": result.flags}
        if thumbnails:
            facts["thumbnails"] = contact_thumbs.for_output(self.out_dir, output, source, result.image)
        self.record(output, result.cache_key, rendering.record(), facts)
        return self._placed(facts)

    def _placed(self, facts: dict[str, Any]) -> dict[str, Any]:
        """Facts with their thumbnails' paths (kept relative to the output folder) as paths to read."""
        thumbnails = facts.get("thumbnails")
        if not thumbnails:
            return dict(facts)
        placed = {side: None if made is None else [str(self.out_dir / made[0]), *made[1:]]
                  for side, made in thumbnails.items()}
        return {**facts, "thumbnails": placed}

    def _append(self, entry: dict[str, Any]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, _APPEND_FLAGS, 0o644)
        try:
            os.write(descriptor, (json.dumps(entry) + "\n").encode("utf-8"))
        finally:
            os.close(descriptor)
