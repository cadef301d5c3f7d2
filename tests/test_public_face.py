"""The library's public face: what `from runflow_api import ...` offers, and every import the docs show.

Modules may move inside the engine (issue 33 lays it out by stage); the names a user imports must not.
`__all__` holds the types that appear in the client's signatures (`IsolationParams`, the options sent and
keyed; `PostProcessing`, the options applied to a result), and every `from runflow_api... import` line in
README.md and docs/*.md runs as written.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import runflow_api

ROOT = Path(__file__).resolve().parents[1]
DOC_IMPORT = re.compile(r"^\s*(from runflow_api(?:\.\w+)* import [\w, ]+|import runflow_api(?:\.\w+)*)\s*$", re.M)


def documented_imports() -> list[tuple[str, str]]:
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line in DOC_IMPORT.findall(page.read_text(encoding="utf-8")):
            found.append((page.name, line.strip()))
    return found


def test_every_exported_name_is_importable_from_the_package() -> None:
    for name in runflow_api.__all__:
        assert getattr(runflow_api, name, None) is not None, name


def test_the_types_in_the_clients_signatures_are_exported() -> None:
    assert {"RunflowClient", "IsolationParams", "PostProcessing", "IsolationResult", "BatchPlan", "ProgressEvent",
            "RetryPolicy", "PollPolicy", "Timeouts", "Balance"} <= set(runflow_api.__all__)
    params = runflow_api.IsolationParams.of(aspect_ratio="1:1", resolution="1K")
    assert params.resolution == "1K"
    assert runflow_api.PostProcessing(edges="clean").edges == "clean"


def test_the_docs_show_imports_to_check() -> None:
    assert any("from runflow_api import RunflowClient" in line for _, line in documented_imports())


@pytest.mark.parametrize(("page", "line"), documented_imports())
def test_an_import_the_docs_show_works(page: str, line: str) -> None:
    exec(compile(line, page, "exec"), {})  # noqa: S102 - our own docs' import lines
