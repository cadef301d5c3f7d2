"""Durable, atomic file writes shared by the cache, the journal and the catalogue's outputs.

Both are read by other processes (a second ComfyUI, the CLI) while being written, and both must survive
a crash at any instant: a file is either the old version or the new one, never half of each. On Windows a
rename over a file another process has open (an antivirus scan, a second ComfyUI reading the cache, a sync
client) fails for as long as it stays open: `replace_file` retries that for a bounded time.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path

PRIVATE = 0o600  # the pack's own stores: cache, journal, learned durations
LIKE_ANY_FILE = 0o666  # what the user reads: the umask narrows it as for any file they make
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) \
    | getattr(os, "O_BINARY", 0)
REPLACE_RETRY_S = 10.0  # how long a rename waits for another program to close its target (Windows)
# Windows' answers to a rename over a file that is open elsewhere: access denied, sharing violation.
_HELD_ELSEWHERE = frozenset({5, 32})


def atomic_write(path: Path, data: bytes, *, durable: bool = True, mode: int = PRIVATE) -> None:
    """Write to a temporary file beside `path`, fsync it, then rename over `path`.

    The file is created with `mode` minus the umask, by the kernel (no chmod, no umask juggling, which
    would race other threads): `PRIVATE` for the pack's own stores, `LIKE_ANY_FILE` for what the user
    reads (catalogue outputs, the demo's picture), which then get the mode any file the user makes gets
    and can be read from another account or service (a NAS, a web-shop sync, a web server)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temporary(path, mode)
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


def _new_temporary(path: Path, mode: int) -> tuple[int, str]:
    """A new file with a random name beside `path` (never one a planted link could stand in for: it is
    created exclusively, links not followed), open for writing."""
    while True:
        tmp = str(path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp"))
        try:
            return os.open(tmp, _CREATE, mode), tmp
        except FileExistsError:
            continue


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
