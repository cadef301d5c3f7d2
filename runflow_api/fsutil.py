"""Durable, atomic small-file writes shared by the cache and the journal.

Both are read by other processes (a second ComfyUI, the CLI) while being written, and both must survive
a crash at any instant: a file is either the old version or the new one, never half of each. On Windows a
rename over a file another process has open (an antivirus scan, a second ComfyUI reading the cache, a sync
client) fails for as long as it stays open: `replace_file` retries that for a bounded time.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

REPLACE_RETRY_S = 10.0  # how long a rename waits for another program to close its target (Windows)
# Windows' answers to a rename over a file that is open elsewhere: access denied, sharing violation.
_HELD_ELSEWHERE = frozenset({5, 32})


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write to a temporary file beside `path`, fsync it, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        replace_file(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def replace_file(source: str | os.PathLike[str], target: Path) -> None:
    """`os.replace(source, target)`, retried while Windows refuses it because another program has `target`
    open; after `REPLACE_RETRY_S` a PermissionError that names the file and what to do. Any other failure
    is raised at once (a POSIX permission error does not go away by waiting)."""
    deadline = time.monotonic() + REPLACE_RETRY_S
    pause = 0.05
    while True:
        try:
            os.replace(source, target)
            return
        except PermissionError as exc:
            if getattr(exc, "winerror", None) not in _HELD_ELSEWHERE:
                raise
            if time.monotonic() + pause > deadline:
                raise PermissionError(
                    exc.errno, f"another program (an antivirus scan, a second ComfyUI, a sync client) kept {target} "
                    f"open for {REPLACE_RETRY_S:.0f} s, so it could not be replaced; close that program and run "
                    "again",
                ) from exc
        time.sleep(pause)
        pause = min(pause * 2, 0.5)
