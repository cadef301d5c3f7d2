"""The node help pages ComfyUI's frontend shows (`/extensions/<pack>/docs/<NodeId>.md`, served from
WEB_DIRECTORY): one per node, naming every input and output it has, with the pictures they show.
test_comfyui_real.py fetches them from a running ComfyUI at the address the frontend uses."""

from __future__ import annotations

import re
from typing import Any

import pytest
from comfy_harness import PACK_DIR, load_pack

DOCS = PACK_DIR / "web" / "docs"
NODES = load_pack().nodes.NODES


@pytest.mark.parametrize("node", NODES, ids=[node.node_id for node in NODES])
def test_every_node_has_a_help_page_naming_its_inputs_and_outputs(node: Any) -> None:
    text = (DOCS / f"{node.node_id}.md").read_text(encoding="utf-8")
    assert text.startswith(f"# {node.display_name}\n")
    for name in [spec.name for spec in node.inputs] + [out.name for out in node.outputs]:
        assert f"`{name}`" in text, f"{node.node_id}.md does not explain {name}"
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (DOCS / image).is_file(), f"{node.node_id}.md shows {image}, which is missing"


def test_the_isolation_pages_state_polarity_price_and_the_emulator() -> None:
    for node_id in ("RunflowProductIsolation", "RunflowProductIsolationFromURL"):
        text = (DOCS / f"{node_id}.md").read_text(encoding="utf-8")
        assert "1 = product, 0 = background" in text and "Invert" in text
        assert "$0.27" in text and "emulator" in text.lower()
