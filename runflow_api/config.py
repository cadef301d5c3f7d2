"""Where the key, the service address and the engine's directories come from.

The key is looked up, in order, in `RUNFLOW_API_KEY` and then in a key file written with mode 0600 (by
the ComfyUI settings route or by hand). It is never read from a widget, a ComfyUI setting or a workflow,
because all of those end up in shared files. Everything that prints a key prints `mask_key(key)`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import stat
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import InputRejected, MissingApiKey
from .redact import KEY_PREFIXES, SECRET_PREFIXES, url_for_display

DEFAULT_BASE_URL = "https://api.runflow.io"
KEY_ENV = "RUNFLOW_API_KEY"
BASE_ENV = "RUNFLOW_API_BASE"
KEY_FILE_ENV = "RUNFLOW_KEY_FILE"
CACHE_DIR_ENV = "RUNFLOW_CACHE_DIR"
DATA_DIR_ENV = "RUNFLOW_DATA_DIR"
# The service id of the bundled emulator (service.make_client): its runs cost nothing, so no budget counts them.
EMULATOR_SERVICE_ID = "emulator"
PUBLIC_URL_ENV = "RUNFLOW_PUBLIC_URL"
CALLBACK_SECRET_ENV = "RUNFLOW_CALLBACK_SECRET"
CALLBACK_SECRET_FILE_ENV = "RUNFLOW_CALLBACK_SECRET_FILE"

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")
_MIN_KEY_LENGTH = 12
# Only these prefixes are shown by mask_key: they are public (they name the key's kind, not the key).
PUBLIC_KEY_PREFIXES = KEY_PREFIXES
PUBLIC_SECRET_PREFIXES = SECRET_PREFIXES
_MASK_TAIL = 4
# The tail is shown only when at least this many characters stay hidden between prefix and tail.
_MASK_MIN_HIDDEN = 8
ACCEPTED_KEY_SHAPES = (
    f"at least {_MIN_KEY_LENGTH} characters, only letters, digits and '_' "
    f"(Runflow keys look like {PUBLIC_KEY_PREFIXES[0]}... or {PUBLIC_KEY_PREFIXES[1]}...)"
)


@dataclass
class _Defaults:
    """Locations a host application (ComfyUI) may set once at start-up; env vars still win."""

    key_file: Path | None = None
    cache_dir: Path | None = None
    data_dir: Path | None = None


_defaults = _Defaults()


def configure_defaults(
    *, key_file: Path | None = None, cache_dir: Path | None = None, data_dir: Path | None = None
) -> None:
    """Let the host put the key file, cache and data under its own user directory (ComfyUI's `user/`)."""
    if key_file is not None:
        _defaults.key_file = Path(key_file)
    if cache_dir is not None:
        _defaults.cache_dir = Path(cache_dir)
    if data_dir is not None:
        _defaults.data_dir = Path(data_dir)


def _xdg(env: str, fallback: str) -> Path:
    return Path(os.environ.get(env) or Path.home() / fallback)


def key_file_path() -> Path:
    """The key file: `RUNFLOW_KEY_FILE`, else the host's choice, else ~/.config/runflow/api_key."""
    if os.environ.get(KEY_FILE_ENV):
        return Path(os.environ[KEY_FILE_ENV])
    if _defaults.key_file is not None:
        return _defaults.key_file
    return _xdg("XDG_CONFIG_HOME", ".config") / "runflow" / "api_key"


def cache_dir() -> Path:
    """Where results are cached: `RUNFLOW_CACHE_DIR`, else the host's choice, else ~/.cache/runflow."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    if _defaults.cache_dir is not None:
        return _defaults.cache_dir
    return _xdg("XDG_CACHE_HOME", ".cache") / "runflow"


def data_dir() -> Path:
    """Where the run journal and the spend ledger live (kept apart from the cache, which may be wiped)."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV])
    if _defaults.data_dir is not None:
        return _defaults.data_dir
    return _xdg("XDG_DATA_HOME", ".local/share") / "runflow"


def mask_key(key: str | None) -> str:
    """A form of the key safe to show: a recognised public prefix and the last four characters.

    Whatever the key's shape, nothing of its secret middle is shown: an unknown prefix is hidden (in
    `sk_SECRET_abcd` or `rf_SECRET_ab` the "prefix" would be the secret), and a key too short to keep
    at least eight characters hidden shows no tail at all."""
    return _mask(key, PUBLIC_KEY_PREFIXES)


def mask_secret(secret: str | None) -> str:
    """The callback secret as it may be shown: like `mask_key`, with `whsec_` as its public prefix."""
    return _mask(secret, PUBLIC_SECRET_PREFIXES)


def _mask(secret: str | None, public_prefixes: tuple[str, ...]) -> str:
    if not secret:
        return "(none)"
    prefix = next((p for p in public_prefixes if secret.startswith(p)), "")
    hidden = len(secret) - len(prefix) - _MASK_TAIL
    tail = secret[-_MASK_TAIL:] if hidden >= _MASK_MIN_HIDDEN else ""
    return f"{prefix}…{tail}"


def validate_key(key: str) -> str:
    """Refuse a malformed key before it is sent anywhere (the official SDK allows letters, digits and _)."""
    key = key.strip()
    if not key:
        raise MissingApiKey(missing_key_message())
    if not _KEY_PATTERN.match(key):
        fault = "contains characters other than letters, digits and '_' (a space, quote or line break?)"
    elif len(key) < _MIN_KEY_LENGTH:
        fault = f"is only {len(key)} characters long"
    else:
        return key
    raise InputRejected(
        f"The Runflow API key {mask_key(key)} is malformed: it {fault}. Accepted keys are "
        f"{ACCEPTED_KEY_SHAPES}. Copy it again from your Runflow dashboard, without quotes or spaces."
    )


def configured_secrets() -> tuple[str, ...]:
    """Every credential configured on this machine, as written (even a malformed one): the key from the
    environment and the key file, the callback secret from the environment and its file. For keeping
    them out of what is sent or shown, whether or not they are in use (callbacks may be off)."""
    found = (os.environ.get(KEY_ENV), read_key_file(), os.environ.get(CALLBACK_SECRET_ENV),
             read_secret_file(callback_secret_path()))
    return tuple(text.strip() for text in found if text and text.strip())


def missing_key_message() -> str:
    return (
        "No Runflow API key is set. Set the environment variable RUNFLOW_API_KEY, or save the key in "
        f"ComfyUI under Settings > Runflow > API key (it is stored in {key_file_path()}, mode 0600), "
        "or use the free offline emulator (Settings > Runflow > Service, or --emulator on the command line)."
    )


def read_key_file(path: Path | None = None) -> str | None:
    """The key stored in the key file, or None when there is no (readable, non-empty) file."""
    return read_secret_file(path or key_file_path())


def read_secret_file(path: Path) -> str | None:
    """A credential file's text, stripped; None when there is no (readable, non-empty) file."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError):
        return None
    return text or None


def key_source() -> str | None:
    """Which source would supply the key now: "env", "file" or None."""
    if os.environ.get(KEY_ENV, "").strip():
        return "env"
    if read_key_file():
        return "file"
    return None


def resolve_api_key(explicit: str | None = None) -> str:
    """The key to use: an explicit one, else the environment, else the key file; validated."""
    for candidate in (explicit, os.environ.get(KEY_ENV), read_key_file()):
        if candidate and candidate.strip():
            return validate_key(candidate)
    raise MissingApiKey(missing_key_message())


def write_key_file(key: str, path: Path | None = None) -> Path:
    """Store a validated key with mode 0600 (see `write_secret_file`)."""
    return write_secret_file(path or key_file_path(), validate_key(key))


def delete_key_file(path: Path | None = None) -> bool:
    """Remove the stored key; True when there was one (see `delete_secret_file`)."""
    return delete_secret_file(path or key_file_path())


def delete_secret_file(path: Path) -> bool:
    """Remove a credential file; True when there was one. Serialised with writers, so a delete and a
    save racing each other end in one of the two states, never in an error."""
    with _secret_file_lock(path):
        try:
            path.unlink()
        except FileNotFoundError:
            return False
    return True


# -- credential files ---------------------------------------------------------------------------------

_SECRET_WRITE_LOCK = threading.Lock()
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


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


# -- callbacks: the public URL and the signing secret ---------------------------------------------------

_SECRET_PATTERN = re.compile(r"^[\x21-\x7e]{16,256}$")  # printable ASCII, no spaces: what Runflow issues


def callback_secret_path() -> Path:
    """The callback secret's file: `RUNFLOW_CALLBACK_SECRET_FILE`, else `callback_secret` beside the key file."""
    if os.environ.get(CALLBACK_SECRET_FILE_ENV):
        return Path(os.environ[CALLBACK_SECRET_FILE_ENV])
    return key_file_path().parent / "callback_secret"


def callback_secret_source() -> str | None:
    """Which source would supply the callback secret now: "env", "file" or None."""
    if os.environ.get(CALLBACK_SECRET_ENV, "").strip():
        return "env"
    if read_secret_file(callback_secret_path()):
        return "file"
    return None


def validate_callback_secret(secret: str) -> str:
    """Refuse a secret that cannot be what Runflow issued (`whsec_...`), without showing it."""
    secret = secret.strip()
    if not _SECRET_PATTERN.match(secret):
        raise InputRejected(
            f"The callback secret {mask_secret(secret)} is malformed: it must be 16 to 256 printable characters "
            "without spaces (Runflow's look like whsec_...). Copy it again from Runflow (POST /v1/callback-secrets)."
        )
    return secret


def resolve_callback_secret() -> str | None:
    """The secret that signs callbacks: `RUNFLOW_CALLBACK_SECRET`, else the 0600 file; None when unset.
    A malformed one is refused (InputRejected), never used."""
    for candidate in (os.environ.get(CALLBACK_SECRET_ENV), read_secret_file(callback_secret_path())):
        if candidate and candidate.strip():
            return validate_callback_secret(candidate)
    return None


def write_callback_secret_file(secret: str, path: Path | None = None) -> Path:
    """Store a validated callback secret with mode 0600 (see `write_secret_file`)."""
    return write_secret_file(path or callback_secret_path(), validate_callback_secret(secret))


def delete_callback_secret_file(path: Path | None = None) -> bool:
    return delete_secret_file(path or callback_secret_path())


def validate_public_url(url: str, *, what: str = PUBLIC_URL_ENV) -> str:
    """The base URL at which Runflow reaches this server, without a trailing /: http(s), a host, no
    credentials, no query. Plain http is allowed (a reverse proxy may terminate TLS) but only https is
    safe on the internet, which the README says."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise InputRejected(
            f"{what} {url_for_display(url)!r} is not a usable base URL: give the address at which Runflow "
            "can reach this server, such as https://comfy.example.com (no user name, password or query)."
        )
    if parts.query or parts.fragment:
        raise InputRejected(f"{what} {url_for_display(url)!r} must not have a query or fragment.")
    return url


def public_url() -> str | None:
    """`RUNFLOW_PUBLIC_URL`, validated; None when unset."""
    raw = os.environ.get(PUBLIC_URL_ENV, "").strip()
    return validate_public_url(raw) if raw else None


def resolve_base_url(explicit: str | None = None) -> str:
    """The service address: explicit, else `RUNFLOW_API_BASE`, else the public API; without a trailing /."""
    base = (explicit or os.environ.get(BASE_ENV) or DEFAULT_BASE_URL).strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise InputRejected(
            f"The Runflow base URL {url_for_display(base)!r} is not an http(s) address. Set RUNFLOW_API_BASE "
            f"to something like {DEFAULT_BASE_URL}, or unset it."
        )
    if parts.scheme == "http" and not is_loopback_url(base):
        raise InputRejected(
            f"The Runflow base URL {url_for_display(base)!r} uses plain http on a non-local host, which would "
            "send the key unencrypted. Use https, or a loopback address for the emulator."
        )
    return base


def is_loopback_url(url: str) -> bool:
    """True for URLs on this machine (127.0.0.0/8, ::1, localhost): the only place plain http is allowed."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_for_log(url: str) -> str:
    """A URL without its userinfo or query string: presigned URLs carry signatures that are credentials too."""
    return url_for_display(url)
