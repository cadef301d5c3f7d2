"""The pack's version, written in one place: `pyproject.toml`'s `[project] version`.

The Comfy Registry reads the version from pyproject.toml and cannot take a computed one, so that file is
the source and the code reads it. A checkout and a ComfyUI pack folder have the file beside this package;
an installed wheel does not, and there the installed distribution's metadata says the same thing.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "runflow-product-isolation"
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

# The two [project] lines we need, read without a TOML parser: ComfyUI may run on Python 3.10 (no tomllib).
_FIELD = re.compile(r'^(name|version)\s*=\s*"([^"]+)"\s*$', re.MULTILINE)


def _from_pyproject(path: Path) -> str | None:
    """The version in `path` if it is this pack's pyproject.toml (a wheel installed into site-packages
    could sit beside some other project's file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    project = text.split("[project]", 1)[1].split("\n[", 1)[0] if "[project]" in text else ""
    fields = dict(_FIELD.findall(project))
    return fields.get("version") if fields.get("name") == DISTRIBUTION else None


def read_version() -> str:
    """This pack's version: from pyproject.toml beside the package, else from the installed metadata."""
    found = _from_pyproject(PYPROJECT)
    if found:
        return found
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


PACK_VERSION = read_version()
"""Read once on import; `runflow_api.__version__` and every module that names the pack's version use it
(importing it from here rather than from the package keeps the engine's imports pointing down)."""
