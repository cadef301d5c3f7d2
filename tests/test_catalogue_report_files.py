"""The catalogue and its report's own files, through the command line and a real emulator: a report and its
thumbnails written inside the input folder are never read as photos (review 4, item 1: they were paid for),
and one picture that cannot be made into a thumbnail never stops the report (item 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from support import EMULATOR_KEY, product_photo

from runflow_api.cli import main


@pytest.fixture
def service(emu: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    return emu


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    Image.fromarray(product_photo(1)).save(root / "a.jpg")
    Image.fromarray(product_photo(2)).save(root / "b.png")
    return root


def isolate(photos: Path, out: Path, report: Path) -> int:
    return main(["isolate", str(photos), "--out", str(out), "--resolution", "1K", "-q", "--report", str(report)])


@pytest.mark.parametrize("name", ["qa.html", "sub/qa.html", "qa.json"])
def test_a_report_inside_the_input_folder_is_never_paid_for(service: Any, photos: Path, tmp_path: Path,
                                                            name: str) -> None:
    report = photos / name
    assert isolate(photos, tmp_path / "out", report) == 0
    assert service.stats["creates"] == 2
    if report.suffix == ".html":
        assert len(list((report.parent / "qa-thumbs").glob("*.webp"))) == 4, "the thumbnails the re-run must skip"
    (tmp_path / "out" / "a.png").unlink()  # the re-run then has work to do: a.jpg, from the cache
    assert isolate(photos, tmp_path / "out", report) == 0
    assert service.stats["creates"] == 2, "the re-run paid for the report's own files"
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.png")) == ["a.png", "b.png"]


def test_an_earlier_reports_thumbnails_are_not_photos_either(service: Any, photos: Path, tmp_path: Path) -> None:
    assert isolate(photos, tmp_path / "out", photos / "monday.html") == 0
    assert isolate(photos, tmp_path / "out", photos / "tuesday.html") == 0, "a report under a new name"
    assert service.stats["creates"] == 2
    assert (photos / "monday-thumbs" / "0-in.webp").is_file()
