"""ComfyUI's door to the Runflow product-isolation pack.

ComfyUI imports this folder as a package. With its versioned V3 API (ComfyUI 0.3.48 and later) the pack
offers `comfy_entrypoint` and no NODE_CLASS_MAPPINGS (ComfyUI's loader takes NODE_CLASS_MAPPINGS first
when both exist); without it, NODE_CLASS_MAPPINGS / NODE_DISPLAY_NAME_MAPPINGS generated from the same
declaration. WEB_DIRECTORY serves the browser extension, the help pages and nothing secret. An import
error here would silently leave the pack without nodes, so everything that exists only inside ComfyUI
(its user directory, its web server, its V3 API) is looked up guarded, and the pack also imports cleanly
in plain Python (tests, scripts).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from . import nodes
from .runflow_api.settings import directories

log = logging.getLogger("runflow")

WEB_DIRECTORY = "./web"


def _use_comfyui_user_directory() -> None:
    """Keep the key file, the cache, the journal and the ledger under ComfyUI's `user/` folder."""
    try:
        import folder_paths
    except ImportError:
        return  # not inside ComfyUI: the engine's own defaults (~/.config, ~/.cache, ~/.local/share) apply
    base = Path(folder_paths.get_user_directory()) / "runflow"
    directories.configure_defaults(key_file=base / "api_key", cache_dir=base / "cache", data_dir=base)


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

_V3 = nodes.v3_api()
if _V3 is not None:
    comfy_entrypoint: Any = nodes.comfy_entrypoint_for(_V3)
    __all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
else:
    NODE_CLASS_MAPPINGS = nodes.NODE_CLASS_MAPPINGS
    NODE_DISPLAY_NAME_MAPPINGS = nodes.NODE_DISPLAY_NAME_MAPPINGS
    __all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
