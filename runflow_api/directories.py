"""Where the engine keeps its files: the key file, the result cache, and the data folder (journal, ledger).

Each comes from its environment variable, else the host application's choice (ComfyUI puts them under
its `user/runflow/` folder at start-up, `configure_defaults`), else the XDG default of this user. The
cache is kept apart from the data: a cache may be wiped, the journal and the ledger must not be.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KEY_FILE_ENV = "RUNFLOW_KEY_FILE"
CACHE_DIR_ENV = "RUNFLOW_CACHE_DIR"
DATA_DIR_ENV = "RUNFLOW_DATA_DIR"


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

