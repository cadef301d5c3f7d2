"""The catalogue and its report's own files, through the command line and a real emulator: a report and its
thumbnails written inside the input folder are never read as photos (review 4, item 1: they were paid for),
and one picture that cannot be made into a thumbnail never stops the report (item 5)."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from support import product_photo

from runflow_api.catalogue.cli import main


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
def test_a_report_inside_the_input_folder_is_never_paid_for(service_env: Any, photos: Path, tmp_path: Path,
                                                            name: str) -> None:
    report = photos / name
    assert isolate(photos, tmp_path / "out", report) == 0
    assert service_env.stats["creates"] == 2
    if report.suffix == ".html":
        assert len(list((report.parent / "qa-thumbs").glob("*.webp"))) == 4, "the thumbnails the re-run must skip"
    (tmp_path / "out" / "a.png").unlink()  # the re-run then has work to do: a.jpg, from the cache
    assert isolate(photos, tmp_path / "out", report) == 0
    assert service_env.stats["creates"] == 2, "the re-run paid for the report's own files"
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.png")) == ["a.png", "b.png"]


def test_an_earlier_reports_thumbnails_are_not_photos_either(service_env: Any, photos: Path, tmp_path: Path) -> None:
    assert isolate(photos, tmp_path / "out", photos / "monday.html") == 0
    assert isolate(photos, tmp_path / "out", photos / "tuesday.html") == 0, "a report under a new name"
    assert service_env.stats["creates"] == 2
    assert (photos / "monday-thumbs" / "0-in.webp").is_file()



def _damaged_png(seed: int) -> bytes:
    """A PNG with one flipped bit in the length of the chunk after its header: Pillow opens it, then
    reports the broken chunk as SyntaxError ("broken PNG file"), not as OSError."""
    buffer = io.BytesIO()
    Image.fromarray(product_photo(seed)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[35] ^= 0x04
    with pytest.raises(SyntaxError), Image.open(io.BytesIO(bytes(data))) as opened:
        opened.load()
    return bytes(data)


def _cards(report: Path) -> dict[str, str]:
    """Each card of the contact sheet by the name it shows."""
    cards = report.read_text(encoding="utf-8").split('<figure class="card"')[1:]
    return {re.search(r'<span class="name"[^>]*>([^<]*)<', card)[1]: card for card in cards}


def test_a_photo_that_breaks_its_thumbnail_still_gets_a_report(service_env: Any, photos: Path, tmp_path: Path) -> None:
    (photos / "broken.png").write_bytes(_damaged_png(3))
    report = tmp_path / "qa.html"
    assert isolate(photos, tmp_path / "out", report) == 1, "the broken photo fails on its own"
    cards = _cards(report)
    assert set(cards) == {"a.jpg", "b.png", "broken.png"}
    assert cards["broken.png"].count("no image") == 2 and 'data-status="failed"' in cards["broken.png"]
    assert "no image" not in cards["a.jpg"]


def test_a_saved_output_that_cannot_be_read_still_gets_a_report(service_env: Any, photos: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "out", tmp_path / "qa.html"
    assert isolate(photos, out, report) == 0
    (out / "a.png").write_bytes(_damaged_png(4))  # an earlier run's output, damaged since
    # As an older version left it: no record of what made the outputs, so the report reads the files.
    (out / ".runflow-renderings.jsonl").unlink()
    shutil.rmtree(out / ".runflow-thumbs")
    assert isolate(photos, out, report) == 0
    cards = _cards(report)
    assert 'data-status="skipped"' in cards["a.jpg"] and cards["a.jpg"].count("no image") == 1
    assert 'data-flags=""' in cards["a.jpg"], "flags it could not read are none, not a crash"
