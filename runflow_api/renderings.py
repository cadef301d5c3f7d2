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
is ignored (that output is then "unknown", so kept).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .post_processing import PostProcessing

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

    def facts(self, output: Path) -> dict[str, Any]:
        """What was known of `output` when it was written (its QA `flags`, its contact-sheet `thumbnails`),
        so a report covers it without decoding it again; empty when it has no record."""
        made = self._made.get(self._name(output))
        return dict(made["facts"]) if made else {}

    def add(self, output: Path, cache_key: str, rendering: PostProcessing, facts: dict[str, Any]) -> None:
        """Record that `output` was just written from the result stored under `cache_key` with `rendering`;
        `facts`: what a report shows of it (`facts()`)."""
        name, made = self._name(output), rendering.record()
        self._made[name] = {"key": cache_key, "rendering": made, "facts": facts}
        entry = {"output": name, "key": cache_key, "rendering": made, "facts": facts}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, _APPEND_FLAGS, 0o644)
        try:
            os.write(descriptor, (json.dumps(entry) + "\n").encode("utf-8"))
        finally:
            os.close(descriptor)
