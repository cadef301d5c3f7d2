"""locales/en/nodeDefs.json, derived from the declaration: the English every translation starts from.

ComfyUI's frontend shows a node's names and tooltips from `locales/<lang>/nodeDefs.json` when the user's
language has one, and from `/object_info` otherwise. The English file is therefore only the translators'
source; it is generated from the declaration (the top-level `nodes.py`) so it can never say something
the node does not, and tests/test_locales.py fails when the committed file and the declaration part.
Regenerate with `write_english()` (tests/test_locales.py says how).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..nodes import NODES

LOCALES_DIR = Path(__file__).resolve().parents[1] / "locales"


def node_defs_english() -> dict[str, Any]:
    """nodeDefs.json's tree: display_name, description, inputs by name, outputs by index."""
    return {
        node.node_id: {
            "display_name": node.display_name,
            "description": node.description,
            "inputs": {spec.name: {"name": spec.name, "tooltip": spec.tooltip} for spec in node.inputs},
            "outputs": {str(i): {"name": out.name, "tooltip": out.tooltip} for i, out in enumerate(node.outputs)},
        }
        for node in NODES
    }


def render(tree: dict[str, Any]) -> str:
    return json.dumps(tree, indent=2, ensure_ascii=False) + "\n"


def write_english() -> None:
    (LOCALES_DIR / "en" / "nodeDefs.json").write_text(render(node_defs_english()), encoding="utf-8")
