"""The node help pages ComfyUI's frontend shows: `/extensions/<pack>/docs/<NodeId>/<lang>.md`, else
`/extensions/<pack>/docs/<NodeId>.md`, served from WEB_DIRECTORY. One per node in English, Chinese and
Japanese, each titled with the node's name in that language, naming every input and output, with the
pictures they show (relative to docs/, the base the help panel resolves them against).
test_comfyui_real.py fetches them from a running ComfyUI at the address the frontend uses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from comfy_harness import PACK_DIR, load_pack

DOCS = PACK_DIR / "web" / "docs"
NODES = load_pack().nodes.NODES
LANGS = ("en", "zh", "ja")


def page(node_id: str, lang: str) -> Path:
    return DOCS / f"{node_id}.md" if lang == "en" else DOCS / node_id / f"{lang}.md"


def title(node_id: str, lang: str) -> str:
    names = json.loads((PACK_DIR / "locales" / lang / "nodeDefs.json").read_text(encoding="utf-8"))
    return str(names[node_id]["display_name"])


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("node", NODES, ids=[node.node_id for node in NODES])
def test_every_node_has_a_help_page_naming_its_inputs_and_outputs(node: Any, lang: str) -> None:
    text = page(node.node_id, lang).read_text(encoding="utf-8")
    assert text.startswith(f"# {title(node.node_id, lang)}\n")
    for name in [spec.name for spec in node.inputs] + [out.name for out in node.outputs]:
        assert f"`{name}`" in text, f"{node.node_id} ({lang}) does not explain {name}"
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (DOCS / image).is_file(), f"{node.node_id} ({lang}) shows {image}, which is missing"
    assert "RUNFLOW_API_KEY" in text or "emulator" in text.lower() or "模拟器" in text or "エミュレーター" in text


@pytest.mark.parametrize("lang", LANGS)
def test_the_isolation_pages_state_polarity_price_and_the_emulator(lang: str) -> None:
    polarity = {"en": "1 = product, 0 = background", "zh": "1 = 产品，0 = 背景", "ja": "1 = 商品、0 = 背景"}[lang]
    emulator = {"en": "emulator", "zh": "模拟器", "ja": "エミュレーター"}[lang]
    for node_id in ("RunflowProductIsolation", "RunflowProductIsolationFromURL"):
        text = page(node_id, lang).read_text(encoding="utf-8")
        assert polarity in text and "Invert Mask" in text
        assert "$0.27" in text and emulator in text
