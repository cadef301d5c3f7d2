"""ComfyUI's door to the Runflow product-isolation pack.

ComfyUI imports this folder as a package and reads NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS and
WEB_DIRECTORY. An import error here would silently leave the pack without nodes, so everything that
exists only inside ComfyUI (its user directory, its web server) is looked up guarded, and the pack also
imports cleanly in plain Python (tests, scripts).
"""

from __future__ import annotations

import logging
from pathlib import Path

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from .runflow_api import config

log = logging.getLogger("runflow")

WEB_DIRECTORY = "./web"


def _use_comfyui_user_directory() -> None:
    """Keep the key file, the cache, the journal and the ledger under ComfyUI's `user/` folder."""
    try:
        import folder_paths
    except ImportError:
        return  # not inside ComfyUI: the engine's own defaults (~/.config, ~/.cache, ~/.local/share) apply
    base = Path(folder_paths.get_user_directory()) / "runflow"
    config.configure_defaults(key_file=base / "api_key", cache_dir=base / "cache", data_dir=base)


def _register_routes() -> None:
    """The settings panel's routes exist only when ComfyUI's web server does."""
    try:
        from server import PromptServer
    except ImportError:
        return  # not inside ComfyUI
    if getattr(PromptServer, "instance", None) is None:
        return
    try:
        from . import routes  # noqa: F401 - registers the /runflow/... routes on import
    except ImportError as exc:
        log.warning("Runflow: settings routes unavailable (%s); the nodes work, the settings panel does not.", exc)


_use_comfyui_user_directory()
_register_routes()

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
