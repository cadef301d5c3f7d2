"""The pack's ComfyUI nodes: which node API this ComfyUI gets, and the names tests and scripts use.

One declaration (`declaration.py`), two renderings: the V3 schema through ComfyUI's versioned API
`comfy_api.v0_0_2` (ComfyUI 0.3.48 and later), and the classic V1 classes, generated from the same
declaration, for an older ComfyUI and for plain Python. `v3_api()` says which one this process gets.

Modules, one job each: `spec` (the declaration's vocabulary), `declaration` (the three nodes),
`execution` (what a node does when it runs), `tensors` (IMAGE/MASK <-> arrays), `feedback` (progress
bar, status line, Cancel), `classic` and `v3` (the two renderings).
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

from .classic import classic_class
from .declaration import NODES
from .execution import parse_urls, raise_failures, run_info_lines
from .feedback import Feedback, status_payload
from .tensors import assemble_outputs, tensor_to_arrays

log = logging.getLogger("runflow")

V3_API = "comfy_api.v0_0_2"
V3_MINIMUM_COMFYUI = "0.3.48"

NODE_CLASS_MAPPINGS: dict[str, type] = {node.node_id: classic_class(node) for node in NODES}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {node.node_id: node.display_name for node in NODES}

RunflowProductIsolation = NODE_CLASS_MAPPINGS["RunflowProductIsolation"]
RunflowProductIsolationFromURL = NODE_CLASS_MAPPINGS["RunflowProductIsolationFromURL"]
RunflowStageImage = NODE_CLASS_MAPPINGS["RunflowStageImage"]


def _comfyui_version() -> str | None:
    """The running ComfyUI's version, or None outside ComfyUI."""
    try:
        return str(importlib.import_module("comfyui_version").__version__)
    except (ImportError, AttributeError):
        return None


def v3_api() -> ModuleType | None:
    """ComfyUI's versioned V3 API, or None when there is none (outside ComfyUI, or older than 0.3.48).

    Inside a ComfyUI without it, one log line says which version is needed; the nodes then load
    through the classic API, unchanged for the user."""
    try:
        return importlib.import_module(V3_API)
    except ImportError as exc:
        version = _comfyui_version()
        if version is not None:
            log.warning(
                "Runflow: ComfyUI %s has no V3 node API (%s, from ComfyUI %s); the Runflow nodes load "
                "through the classic API instead (%s). Update ComfyUI to %s or later.",
                version, V3_API, V3_MINIMUM_COMFYUI, exc, V3_MINIMUM_COMFYUI,
            )  # fmt: skip
        return None


def comfy_entrypoint_for(api: ModuleType) -> Any:
    """The V3 entry point ComfyUI's loader calls, built on `api` (comfy_api.v0_0_2)."""
    from .v3 import entrypoint

    return entrypoint(api, NODES)


__all__ = [
    "NODES",
    "NODE_CLASS_MAPPINGS",
    "NODE_DISPLAY_NAME_MAPPINGS",
    "Feedback",
    "RunflowProductIsolation",
    "RunflowProductIsolationFromURL",
    "RunflowStageImage",
    "assemble_outputs",
    "comfy_entrypoint_for",
    "parse_urls",
    "raise_failures",
    "run_info_lines",
    "status_payload",
    "tensor_to_arrays",
    "v3_api",
]
