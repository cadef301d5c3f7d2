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


def _place(env: str, chosen: Path | None, xdg_env: str, xdg_fallback: str, name: str = "") -> Path:
    """`env` when set, else the host's choice, else `runflow/<name>` under `$xdg_env` (or `~/xdg_fallback`)."""
    if os.environ.get(env):
        return Path(os.environ[env])
    if chosen is not None:
        return chosen
    folder = Path(os.environ.get(xdg_env) or Path.home() / xdg_fallback) / "runflow"
    return folder / name if name else folder


def key_file_path() -> Path:
    """The key file: `RUNFLOW_KEY_FILE`, else the host's choice, else ~/.config/runflow/api_key."""
    return _place(KEY_FILE_ENV, _defaults.key_file, "XDG_CONFIG_HOME", ".config", "api_key")


def cache_dir() -> Path:
    """Where results are cached: `RUNFLOW_CACHE_DIR`, else the host's choice, else ~/.cache/runflow."""
    return _place(CACHE_DIR_ENV, _defaults.cache_dir, "XDG_CACHE_HOME", ".cache")


def data_dir() -> Path:
    """Where the run journal and the spend ledger live (kept apart from the cache, which may be wiped)."""
    return _place(DATA_DIR_ENV, _defaults.data_dir, "XDG_DATA_HOME", ".local/share")
