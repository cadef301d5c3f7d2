"""The engine's stages import only downwards, and the folder shows them (docs/ARCHITECTURE.md, issue 33).

`runflow_api/` is cut into subpackages, one per stage of an image's way; a stage may import its own
modules and the stages below it, never one above. This test reads every module's imports (the lazy ones
inside functions too) with `ast` and fails on one that points up, naming the file, the line and both
stages, so the map in ARCHITECTURE stays true. A new module must be placed in a stage: at the top of
`runflow_api/` only the public face and the shared vocabulary stay (at most 12 modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "runflow_api"

# Bottom to top. A name is a subpackage of runflow_api or a module at its top; "" is the package itself
# (`from runflow_api import ...` / `from .. import __version__`), which is the public face.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("vocabulary", ("errors", "version", "product_isolation")),
    ("settings", ("settings",)),
    ("service", ("service",)),
    ("money", ("money",)),
    ("fleet", ("fleet",)),
    ("pictures", ("pictures",)),
    ("emulator", ("emulator",)),
    ("flow", ("flow",)),
    ("face", ("", "client", "service_choice")),
    ("catalogue", ("catalogue", "__main__")),
]
RANK = {name: rank for rank, (_, names) in enumerate(STAGES) for name in names}
STAGE_NAME = {name: stage for stage, names in STAGES for name in names}
MOST_AT_THE_TOP = 12


def _modules() -> dict[str, Path]:
    """Dotted names inside runflow_api ("" for the package, "money.cache", ...) -> file."""
    found = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _stage_of(name: str) -> str:
    return name.split(".", 1)[0]


def _imports(name: str, path: Path) -> list[tuple[int, str]]:
    """(line, dotted module inside runflow_api) for every import of `name`, lazy ones included."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if name else []
    if not is_package:
        here = here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                source = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module == "runflow_api" or (node.module or "").startswith("runflow_api."):
                source = (node.module or "").removeprefix("runflow_api").lstrip(".")
            else:
                continue
            for alias in node.names:
                member = f"{source}.{alias.name}" if source else alias.name
                found.append((node.lineno, member if member in MODULES else source))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "runflow_api" or alias.name.startswith("runflow_api."):
                    found.append((node.lineno, alias.name.removeprefix("runflow_api").lstrip(".")))
    return found


def test_every_module_is_in_a_declared_stage() -> None:
    unplaced = sorted(name for name in MODULES if _stage_of(name) not in RANK)
    assert not unplaced, (
        f"{unplaced} belong to no stage: move each into the subpackage of its stage (docs/ARCHITECTURE.md), "
        "or declare a new stage in STAGES at its place in the order"
    )


def test_no_stage_imports_one_above_it() -> None:
    upward = []
    for name, path in sorted(MODULES.items()):
        mine = _stage_of(name)
        for line, target in _imports(name, path):
            theirs = _stage_of(target)
            if theirs in RANK and mine in RANK and RANK[theirs] > RANK[mine]:
                upward.append(
                    f"{path.relative_to(PACKAGE_DIR.parent)}:{line} imports {target or 'runflow_api'} "
                    f"({STAGE_NAME[mine]} -> {STAGE_NAME[theirs]})"
                )
    assert not upward, "imports pointing up a stage:\n" + "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The walk finds relative, package-level and lazy imports, so a pass above means something."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from ..flow.batch import run_batch\nfrom .. import client\n"
        "def later():\n    from runflow_api.catalogue import cli\n",
        encoding="utf-8",
    )
    assert [target for _, target in _imports("money.sample", sample)] == ["flow.batch", "client", "catalogue.cli"]


def test_few_modules_are_left_at_the_top() -> None:
    top = sorted(path.stem for path in PACKAGE_DIR.glob("*.py"))
    assert len(top) <= MOST_AT_THE_TOP, f"{len(top)} modules at the top of runflow_api/: {top}"
