"""pyproject.toml's Comfy Registry fields are complete and point at files the repository ships.

`comfy node validate` (comfy-cli, not a dependency of the pack) checks the same file for publishing; see
docs/publishing.md for the command and what it checks.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import tomllib
from comfy_harness import PACK_DIR
from PIL import Image

PYPROJECT = tomllib.loads((PACK_DIR / "pyproject.toml").read_text(encoding="utf-8"))
COMFY = PYPROJECT["tool"]["comfy"]
PROJECT = PYPROJECT["project"]


def test_the_registry_fields_are_filled() -> None:
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", COMFY["PublisherId"])
    assert COMFY["DisplayName"] == "Runflow Product Isolation"
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", PROJECT["name"]) and "comfyui" not in PROJECT["name"].lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", PROJECT["version"])
    assert PROJECT["description"] and PROJECT["license"]
    assert re.fullmatch(r">=\d+\.\d+\.\d+", COMFY["requires-comfyui"])
    assert "web" not in COMFY, "WEB_DIRECTORY already serves web/: a second registration loads it twice"
    for url in PROJECT["urls"].values():
        assert url.startswith(PROJECT["urls"]["Repository"])


def test_the_icon_is_the_square_png_the_repository_ships() -> None:
    url = urlsplit(COMFY["Icon"])
    repository = urlsplit(PROJECT["urls"]["Repository"]).path.strip("/")
    assert url.scheme == "https" and url.netloc == "raw.githubusercontent.com"
    owner_repo, branch_and_path = url.path.strip("/")[: len(repository)], url.path.strip("/")[len(repository) + 1 :]
    assert owner_repo == repository
    path = PACK_DIR / branch_and_path.split("/", 1)[1]
    with Image.open(path) as icon:
        assert icon.format == "PNG" and icon.size[0] == icon.size[1] <= 400
