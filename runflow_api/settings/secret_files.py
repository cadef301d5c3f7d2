"""Credential files on disk: written atomically with mode 0600 in a private folder, read, deleted.

The one way the API key file and the callback secret file are stored (`config.py` says which file holds
which credential). Writers are serialised across threads and processes, links planted beside or at the
file are never followed, and a folder another account can write to is refused before anything is written.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import os
import secrets
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputRejected
from .directories import KEY_FILE_ENV
from .fsutil import replace_file

_SECRET_WRITE_LOCK = threading.Lock()
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a pipe swapped in after the check must not block
_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation (it would corrupt UTF-16)
LOCK_WAIT_S = 60.0  # how long a save waits for another process saving the same credential
_MAX_SECRET_FILE_BYTES = 64 * 1024  # a key is under 100 bytes; more is not a key file


def read_secret_file(path: Path) -> str | None:
    """A credential file's text, stripped; None when there is no (readable, non-empty) file.

    Read as UTF-8, UTF-8 with a byte-order mark, or UTF-16 with one (Windows Notepad's "Unicode"). A path
    that is not a regular file (a folder, a named pipe, a device) is refused without being opened for
    reading (a pipe would block the reader), like a file that is not text in those encodings or is far too
    big to hold a credential: `InputRejected` naming the file and how to fix it, never showing its text."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    if not stat.S_ISREG(info.st_mode):
        raise _unusable(path, f"is {_kind(info.st_mode)}, not a regular file")
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | _BINARY | _CLOEXEC)
    except (FileNotFoundError, PermissionError):
        return None
    with os.fdopen(fd, "rb") as opened:
        if not stat.S_ISREG(os.fstat(opened.fileno()).st_mode):  # swapped for something else meanwhile
            raise _unusable(path, "is not a regular file")
        data = opened.read(_MAX_SECRET_FILE_BYTES + 1)
    if len(data) > _MAX_SECRET_FILE_BYTES:
        raise _unusable(path, f"is larger than {_MAX_SECRET_FILE_BYTES // 1024} KiB, far too big to hold a credential")
    text = _decoded(data)
    if text is None:
        raise _unusable(path, "is not text in UTF-8 or UTF-16 with a byte-order mark")
    return text.strip() or None


def _decoded(data: bytes) -> str | None:
    """The text of a credential file in the encodings editors save in; None for anything else."""
    for mark, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                           (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(mark):
            data, chosen = data[len(mark):], encoding
            break
    else:
        chosen = "utf-8"
    try:
        text = data.decode(chosen)
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text  # NULs: UTF-16 saved without its mark, or not text at all


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def _unusable(path: Path, problem: str) -> InputRejected:
    return InputRejected(
        f"Cannot read the credential file {path}: it {problem}. Save the key (or secret) alone on one line as "
        "UTF-8 (Windows Notepad: File > Save as, Encoding: UTF-8), or save it again in ComfyUI under Settings > "
        f"Runflow, which writes the file for you; or point {KEY_FILE_ENV} (for the key) at another file."
    )


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
            replace_file(tmp, path)
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


def _lock_within(fd: int, path: Path) -> None:
    """The OS lock, waited for at most `LOCK_WAIT_S`. Windows' blocking lock gives up after about ten
    seconds with EDEADLOCK; that is retried, and past the bound an error names the file and what to do."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            _os_lock(fd)
            return
        except OSError as exc:
            if exc.errno != errno.EDEADLK:
                raise
            if time.monotonic() > deadline:
                raise OSError(
                    exc.errno, f"another program has been saving {path} for over {LOCK_WAIT_S:.0f} s (its lock "
                    f"file {secret_lock_path(path).name} stayed locked); close the other ComfyUI or command that "
                    "saves it, then save again",
                ) from exc
        time.sleep(0.1)


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
            _lock_within(fd, path)
            try:
                yield
            finally:
                _os_unlock(fd)
        finally:
            os.close(fd)

