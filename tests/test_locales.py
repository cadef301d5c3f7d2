"""The translations ComfyUI serves from locales/: English derived from the code, and Simplified Chinese
and Japanese complete, shaped like English and keeping every run-time value.

ComfyUI merges locales/<lang>/{main,nodeDefs,settings}.json of every pack and serves them at GET /i18n
(test_comfyui_real.py checks that). A key missing in a language silently falls back to English; a
`{placeholder}` lost in translation would show a hole where a number belongs: both fail here.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from comfy_harness import PACK_DIR, load_pack

LOCALES = PACK_DIR / "locales"
FILES = ("main.json", "nodeDefs.json", "settings.json")
TRANSLATIONS = ("zh", "ja")
PLACEHOLDER = re.compile(r"\{\w+\}")


def read(lang: str, name: str) -> Any:
    return json.loads((LOCALES / lang / name).read_text(encoding="utf-8"))


def leaves(tree: Any, path: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        found: dict[str, Any] = {}
        for key, value in tree.items():
            found.update(leaves(value, f"{path}.{key}" if path else key))
        return found
    return {path: tree}


def test_english_node_texts_are_the_declarations() -> None:
    locales = importlib.import_module(f"{load_pack().__name__}.node_machinery.locales")
    expected = locales.render(locales.node_defs_english())
    on_disk = (LOCALES / "en" / "nodeDefs.json").read_text(encoding="utf-8")
    assert on_disk == expected, "locales/en/nodeDefs.json is stale: run node_machinery.locales.write_english()"


@pytest.mark.parametrize("lang", TRANSLATIONS)
@pytest.mark.parametrize("name", FILES)
def test_a_translation_has_every_key_and_keeps_every_placeholder(lang: str, name: str) -> None:
    english, translated = leaves(read("en", name)), leaves(read(lang, name))
    assert set(translated) == set(english), {
        "missing": sorted(set(english) - set(translated)), "extra": sorted(set(translated) - set(english))
    }  # fmt: skip
    for key, text in translated.items():
        assert isinstance(text, str) and text.strip(), f"{lang}/{name}: {key} is empty"
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(english[key])), f"{lang}/{name}: {key}"


@pytest.mark.parametrize("lang", TRANSLATIONS)
def test_a_translation_is_written_in_its_language(lang: str) -> None:
    """Every description and tooltip is mostly CJK text, not English left behind."""
    for name in FILES:
        for key, text in leaves(read(lang, name)).items():
            if key.endswith(("description", "tooltip", "detail", "none", "neededDetail")):
                cjk = sum(1 for char in text if "\u3040" <= char <= "\u9fff")
                assert cjk >= 5, f"{lang}/{name}: {key} looks untranslated: {text}"


def test_the_folders_are_what_comfyui_reads() -> None:
    assert sorted(path.name for path in LOCALES.iterdir()) == ["en", "ja", "zh"]
    for lang in ("en", *TRANSLATIONS):
        assert sorted(path.name for path in (LOCALES / lang).iterdir()) == sorted(FILES)


def test_node_ids_in_the_translations_are_the_nodes(tmp_path: Path) -> None:
    ids = {node.node_id for node in load_pack().nodes.NODES}
    for lang in ("en", *TRANSLATIONS):
        assert set(read(lang, "nodeDefs.json")) == ids
