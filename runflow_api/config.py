"""Where the key, the service address and the engine's directories come from.

The key is looked up, in order, in `RUNFLOW_API_KEY` and then in a key file written with mode 0600 (by
the ComfyUI settings route or by hand). It is never read from a widget, a ComfyUI setting or a workflow,
because all of those end up in shared files. Everything that prints a key prints `mask_key(key)`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import InputRejected, MissingApiKey
from .redact import url_for_display

DEFAULT_BASE_URL = "https://api.runflow.io"
KEY_ENV = "RUNFLOW_API_KEY"
BASE_ENV = "RUNFLOW_API_BASE"
KEY_FILE_ENV = "RUNFLOW_KEY_FILE"
CACHE_DIR_ENV = "RUNFLOW_CACHE_DIR"
DATA_DIR_ENV = "RUNFLOW_DATA_DIR"

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")
_MIN_KEY_LENGTH = 12


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
    """A form of the key safe to show: its prefix and last four characters."""
    if not key:
        return "(none)"
    prefix = key[: key.index("_", key.index("_") + 1) + 1] if key.count("_") >= 2 else ""
    if len(key) < _MIN_KEY_LENGTH:
        return f"{prefix}…"
    return f"{prefix}…{key[-4:]}"


def validate_key(key: str) -> str:
    """Refuse a malformed key before it is sent anywhere (the official SDK allows letters, digits and _)."""
    key = key.strip()
    if not key:
        raise MissingApiKey(missing_key_message())
    if not _KEY_PATTERN.match(key) or len(key) < _MIN_KEY_LENGTH:
        raise InputRejected(
            f"The Runflow API key {mask_key(key)} is malformed: a key is at least {_MIN_KEY_LENGTH} "
            "characters of letters, digits and '_' (like rf_live_...). Copy it again from your Runflow "
            "dashboard, without quotes or spaces."
        )
    return key


def missing_key_message() -> str:
    return (
        "No Runflow API key is set. Set the environment variable RUNFLOW_API_KEY, or save the key in "
        f"ComfyUI under Settings > Runflow > API key (it is stored in {key_file_path()}, mode 0600), "
        "or use the free offline emulator (Settings > Runflow > Service, or --emulator on the command line)."
    )


def read_key_file(path: Path | None = None) -> str | None:
    """The key stored in the key file, or None when there is no (readable, non-empty) file."""
    path = path or key_file_path()
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
    """Store a validated key with mode 0600, created that way so it is never briefly world-readable."""
    key = validate_key(key)
    path = path or key_file_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def delete_key_file(path: Path | None = None) -> bool:
    """Remove the stored key; True when there was one."""
    try:
        (path or key_file_path()).unlink()
    except FileNotFoundError:
        return False
    return True


def resolve_base_url(explicit: str | None = None) -> str:
    """The service address: explicit, else `RUNFLOW_API_BASE`, else the public API; without a trailing /."""
    base = (explicit or os.environ.get(BASE_ENV) or DEFAULT_BASE_URL).strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise InputRejected(
            f"The Runflow base URL {base!r} is not an http(s) address. Set RUNFLOW_API_BASE to something "
            f"like {DEFAULT_BASE_URL}, or unset it."
        )
    if parts.scheme == "http" and not is_loopback_url(base):
        raise InputRejected(
            f"The Runflow base URL {base!r} uses plain http on a non-local host, which would send the key "
            "unencrypted. Use https, or a loopback address for the emulator."
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
