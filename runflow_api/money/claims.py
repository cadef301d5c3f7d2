"""Who works on an input: one claim per cache key, so two processes never pay for the same image.

Two ComfyUI instances, or ComfyUI and the CLI, share one cache and data directory. Without a claim both
would look in the cache, both miss, both upload and both create a run: two bills for one result. The
claim is taken *before* anything is staged and held until the result is in the cache (or the attempt
has ended), so the second process waits and then finds the result, or the journaled run, of the first.

The local backend is an OS file lock (`flock` on POSIX, `msvcrt.locking` on Windows) on a small file per
key: the kernel releases it when its holder exits or is killed, so a crashed process never leaves an
input stuck. A fleet with a shared Redis store adds a claim there on top (`fleet.shared_claims.FleetClaims`).

A batch asks first without waiting (`wait=False`): an input someone else holds raises `ClaimHeld`, and the
batch sets it aside to take other inputs instead of spending one of its workers on the wait (batch.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from ..errors import RunflowCancelled

log = logging.getLogger("runflow_api")

CancelCheck = Callable[[], bool]
_TICK_S = 0.05


class ClaimHeld(Exception):
    """Another holder has this input and the caller asked not to wait. Not an error: the caller comes back
    to the input later. `who` is "process" (on this machine) or "machine" (elsewhere in a fleet)."""

    def __init__(self, who: str) -> None:
        super().__init__(f"this input is being produced by another {who}")
        self.who = who


class Claims(Protocol):
    """Exclusive, crash-safe ownership of one cache key while its result is being produced."""

    def hold(
        self, cache_key: str, *, should_cancel: CancelCheck, on_wait: Callable[[str], None], wait: bool = True
    ) -> contextlib.AbstractContextManager[bool]:
        """Block (cancellably) until this caller owns `cache_key`; the context yields True when it had to
        wait for another holder, whose result the caller should then look for first. `on_wait` is told
        once who holds it: "process" (on this machine) or "machine" (elsewhere in a fleet). With
        `wait=False`, an input held by another raises `ClaimHeld` at once instead."""
        ...


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        with contextlib.suppress(OSError):
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

    def _still_linked(fd: int, path: Path) -> bool:
        return True  # Windows refuses to delete a file another process has open: no stale inode to lock

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

    def _still_linked(fd: int, path: Path) -> bool:
        """The lock is only ours if `path` still names the file we locked: a holder deletes the file
        when it is done, and a waiter that opened it just before must then start again on a new one."""
        try:
            on_disk = os.stat(path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


class LocalClaims:
    """Claims between the processes (and threads) of one machine that share `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._warned = False

    def _path(self, cache_key: str) -> Path:
        return self.directory / f"{cache_key}.lock"

    @contextlib.contextmanager
    def hold(
        self, cache_key: str, *, should_cancel: CancelCheck, on_wait: Callable[[str], None] = lambda who: None,
        wait: bool = True,
    ) -> Iterator[bool]:
        path = self._path(cache_key)
        try:
            fd, waited = self._acquire(path, should_cancel, on_wait, wait)
        except OSError as exc:
            # No claim is no reason to withhold a result: this process still never pays twice on its own.
            if not self._warned:
                self._warned = True
                log.warning(
                    "Cannot claim inputs in %s (%s): another process sharing this cache could pay for the "
                    "same image at the same moment. Make the folder writable.", self.directory, exc,
                )
            yield False
            return
        try:
            yield waited
        finally:
            # Unlink while still holding the lock, so no one can lock this file after we let go;
            # a waiter that already opened it sees it unlinked and retries on a fresh file.
            with contextlib.suppress(OSError):
                path.unlink()
            _unlock(fd)
            os.close(fd)

    def _acquire(
        self, path: Path, should_cancel: CancelCheck, on_wait: Callable[[str], None], wait: bool
    ) -> tuple[int, bool]:
        self.directory.mkdir(parents=True, exist_ok=True)
        waited = False
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            while not _try_lock(fd):
                if not wait:
                    os.close(fd)
                    raise ClaimHeld("process")
                if not waited:
                    waited = True
                    on_wait("process")
                if should_cancel():
                    os.close(fd)
                    raise RunflowCancelled("Cancelled while another process was producing this image's result.")
                time.sleep(_TICK_S)
            if _still_linked(fd, path):
                return fd, waited
            _unlock(fd)
            os.close(fd)
