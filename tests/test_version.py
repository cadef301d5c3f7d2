"""The version is written once, in pyproject.toml (where the Comfy Registry reads it), and the code reads
it from there: the create metadata, the CLI and the docs can never name a different one."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

from runflow_api import __version__
from runflow_api.version import DISTRIBUTION, _from_pyproject

ROOT = Path(__file__).resolve().parent.parent


def test_the_code_reads_the_version_pyproject_declares() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == DISTRIBUTION
    assert __version__ == project["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__), __version__


def test_no_other_file_spells_a_version_of_its_own() -> None:
    literal = re.compile(r"""(__version__|VERSION)\s*=\s*["']\d""")
    sources = [*ROOT.glob("*.py"), *(ROOT / "runflow_api").rglob("*.py"), *(ROOT / "node_machinery").rglob("*.py")]
    offenders = [str(path.relative_to(ROOT)) for path in sources if literal.search(path.read_text(encoding="utf-8"))]
    assert offenders == []


def test_only_this_packs_pyproject_is_believed(tmp_path: Path) -> None:
    ours = tmp_path / "ours.toml"
    ours.write_text(f'[project]\nname = "{DISTRIBUTION}"\nversion = "9.8.7"\n\n[tool.x]\nversion = "1.0.0"\n')
    other = tmp_path / "other.toml"
    other.write_text('[project]\nname = "someone-else"\nversion = "1.2.3"\n')
    assert _from_pyproject(ours) == "9.8.7"
    assert _from_pyproject(other) is None
    assert _from_pyproject(tmp_path / "missing.toml") is None
