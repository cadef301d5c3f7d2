"""Credential files on disk: written atomically with mode 0600 in a private folder, read, deleted.

The one way the API key file and the callback secret file are stored (`config.py` says which file holds
which credential). Writers are serialised across threads and processes, links planted beside or at the
file are never followed, and a folder another account can write to is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from .directories import KEY_FILE_ENV
from .errors import InputRejected

_SECRET_WRITE_LOCK = threading.Lock()
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def read_secret_file(path: Path) -> str | None:
    """A credential file's text, stripped; None when there is no (readable, non-empty) file."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError):
        return None
    return text or None


def delete_secret_file(path: Path) -> bool:
    """Remove a credential file; True when there was one. Serialised with writers, so a delete and a
    save racing each other end in one of the two states, never in an error."""
    with _secret_file_lock(path):
        try:
            path.unlink()
        except FileNotFoundError:
            return False
    return True


def write_secret_file(path: Path, text: str) -> Path:
    """Atomically replace `path` with `text`, readable by this user only. For every credential file.

    The folder must be private: whoever can write to it can swap the file or plant links in it. The
    temporary file has a random name and is created with O_EXCL|O_NOFOLLOW and chmod-ed through its
    descriptor, so a link planted beside the file is never followed; the rename replaces a link at
    `path` itself instead of writing through it. Writers are serialised by a thread lock and an OS lock
    on a lock file, so concurrent saves from threads or processes all succeed and the last one wins."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    refuse_shared_directory(path.parent)
    with _secret_file_lock(path):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
        try:
            try:
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, 0o600)  # the umask may have narrowed it; never chmod by path
                os.write(fd, text.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    return path


def refuse_shared_directory(directory: Path) -> None:
    """Refuse a credential folder that another account can write to or owns (POSIX only: Windows
    permissions are ACLs, which these mode bits do not describe). The check is on sys.platform, which
    type checkers understand, so `mypy --platform win32` sees that os.getuid is never reached there."""
    if sys.platform == "win32":
        return
    info = os.stat(directory)
    shared = stat.S_IMODE(info.st_mode) & (stat.S_IWGRP | stat.S_IWOTH)
    foreign = info.st_uid not in (os.getuid(), 0)
    if shared or foreign:
        mode = f"{stat.S_IMODE(info.st_mode):o}"
        who = "is owned by another user" if foreign else f"can be written by other users (mode {mode})"
        raise InputRejected(
            f"Refusing to store a credential in {directory}: the folder {who}, so another account could "
            f"read or swap the file. Run `chmod 700 '{directory}'` (as its owner), or keep the file in a "
            f"private folder (for the API key: set {KEY_FILE_ENV}), then save again."
        )


def secret_lock_path(path: Path) -> Path:
    """The lock file that serialises writers of `path` (kept, never deleted: deleting lock files races)."""
    return path.with_name(f".{path.name}.lock")


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _os_lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # blocks, retrying for about ten seconds

    def _os_unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _os_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _os_unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def _secret_file_lock(path: Path) -> Iterator[None]:
    """Exclusive right to change `path`: the thread lock for this process (cheap, and Windows locks are
    per process), the OS lock for other processes (ComfyUI and the CLI may save at the same moment)."""
    with _SECRET_WRITE_LOCK:
        if not path.parent.is_dir():
            yield
            return
        fd = os.open(secret_lock_path(path), os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o600)
        try:
            _os_lock(fd)
            try:
                yield
            finally:
                _os_unlock(fd)
        finally:
            os.close(fd)

