"""The test suite's own shape: test modules share code through support modules (support.py,
node_support.py, routes_support.py, comfy_harness.py, ...), never by importing one another, so a test
module can be run, moved or deleted on its own and a fixture has one home (issue 33)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_no_test_module_imports_another() -> None:
    leaning = []
    for path in sorted(TESTS.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            leaning += [f"{path.relative_to(TESTS)}:{node.lineno} imports {name}"
                        for name in names if name.split(".")[0].startswith("test_")]
    assert not leaning, "move what they share into a support module:\n" + "\n".join(leaning)
