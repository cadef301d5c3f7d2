"""Who may read what the pack writes (review 4, item 9): what the user reads (catalogue outputs, the demo's
picture) gets the mode any file the user makes gets, 0666 minus the umask, so a studio's NAS, web-shop
sync or web server can read it; the pack's own stores (the result cache, the journal) and the key file
stay 0600. Outputs are written through a random temporary file renamed into place, which used to leave
every one of them 0600 whatever the umask."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from support import EMULATOR_KEY, product_photo

from runflow_api.catalogue.cli import main
from runflow_api.settings import config, directories

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes and umask")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o002, 0o077], ids=["umask 022", "umask 002", "umask 077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_catalogue_outputs_get_the_mode_of_any_new_file(emu: Any, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path, umask: int, fmt: str) -> None:
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(product_photo(1)).save(photos / "a.jpg")
    out = tmp_path / "out"
    assert main(["isolate", str(photos), "--out", str(out), "--format", fmt, "--resolution", "1K", "-q",
                 "--report", str(out / "report.html")]) == 0
    like_any_file = 0o666 & ~umask
    (tmp_path / "touched").touch()
    assert mode_of(tmp_path / "touched") == like_any_file, "the umask as the test set it"
    assert mode_of(out / f"a.{fmt}") == like_any_file
    assert mode_of(out / "report.html") == like_any_file
    cache_entries = list(Path(os.environ["RUNFLOW_CACHE_DIR"]).glob("??/*.rfc"))
    assert cache_entries and all(mode_of(entry) == 0o600 for entry in cache_entries), "the cache stays private"


def test_the_demo_picture_gets_the_mode_of_the_jpeg_beside_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              umask: int) -> None:
    monkeypatch.setenv("RUNFLOW_EMULATOR_LATENCY", "0.1")
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    isolated, on_white = tmp_path / "demo" / "sneaker-isolated.png", tmp_path / "demo" / "sneaker-on-white.jpg"
    assert mode_of(isolated) == mode_of(on_white) == 0o666 & ~umask


def test_the_key_file_stays_private_whatever_the_umask(umask: int) -> None:
    config.write_key_file("rf_live_OUTPUTMODES000000042")
    assert mode_of(directories.key_file_path()) == 0o600
