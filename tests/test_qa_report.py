"""The catalogue's QA through the command line and a real emulator (which isolates for real here: a blank
photo comes back as an empty matte, six separate objects as six parts): the JSON report's flags, the
end-of-run line, and the HTML contact sheet, checked in Debian's Chromium from file:// (Playwright).

Screenshots go to the test's temporary folder, or to the folder named by RUNFLOW_SCREENSHOTS
(RUNFLOW_SCREENSHOTS=docs refreshes docs/qa-report.png for the README).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from support import EMULATOR_KEY, product_photo

from runflow_api.catalogue.cli import main
from runflow_api.emulator import model
from runflow_api.pictures import qa

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS_ENV = "RUNFLOW_SCREENSHOTS"
PLAIN = (225, 225, 225)


def six_objects(size: tuple[int, int] = (300, 400)) -> np.ndarray:
    """Six separate red boxes on a plain background: a photo with six products where one is expected."""
    photo = np.full((*size, 3), PLAIN, dtype=np.uint8)
    for index in range(6):
        row, col = divmod(index, 3)
        photo[40 + row * 140 : 120 + row * 140, 30 + col * 130 : 110 + col * 130] = (180, 40, 40)
    return photo


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    (root / "shoes").mkdir(parents=True)
    Image.fromarray(product_photo(1, (300, 400))).save(root / "shoes" / "shoe.jpg")
    Image.fromarray(product_photo(4, (300, 400))).save(root / "bag.jpg")
    Image.fromarray(np.full((300, 400, 3), PLAIN, dtype=np.uint8)).save(root / "blank.jpg")
    Image.fromarray(six_objects()).save(root / "six.png")
    return root


@pytest.fixture
def isolating(emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    emu = emulator_factory(cheap=False, latency=0.05)  # a real matte from the photo's pixels
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    return emu


def isolate(photos: Path, out: Path, report: Path) -> int:
    return main(["isolate", str(photos), "--out", str(out), "--resolution", "1K", "-q", "--report", str(report)])


def test_the_json_report_and_the_summary_carry_the_flags(isolating: Any, photos: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "r.json"
    assert isolate(photos, tmp_path / "out", report) == 0, "a flag never makes the run fail"
    data = json.loads(report.read_text())
    flags = {row["name"]: row["flags"] for row in data["items"]}
    assert flags == {"bag.jpg": [], "blank.jpg": ["empty"], "shoes/shoe.jpg": [], "six.png": ["fragments"]}
    assert data["summary"]["flagged"] == 2
    assert "2 flagged: 1 empty (blank.jpg), 1 fragments (six.png)" in capsys.readouterr().err
    assert (tmp_path / "out" / "blank.png").is_file(), "the empty result is saved all the same"
    again = tmp_path / "again.json"
    assert isolate(photos, tmp_path / "out", again) == 0
    rows = json.loads(again.read_text())["items"]
    assert {row["status"] for row in rows} == {"skipped"}
    assert {row["name"]: row["flags"] for row in rows} == flags, "earlier results are judged from their files"


def test_the_emulator_returns_an_empty_matte_for_a_blank_photo_and_six_parts_for_six_objects() -> None:
    blank = Image.fromarray(np.full((300, 400, 3), PLAIN, dtype=np.uint8))
    mattes = []
    for photo in (blank, Image.fromarray(six_objects())):
        encoded = io.BytesIO()
        photo.save(encoded, format="PNG")
        with Image.open(io.BytesIO(model.isolate(encoded.getvalue(), (1024, 1024)))) as result:
            mattes.append(np.asarray(result.getchannel("A")))
    assert mattes[0].max() == 0
    assert len(qa.part_areas(mattes[1] >= 128)) == 6


def test_the_html_report_covers_the_catalogue_with_small_thumbnails(isolating: Any, photos: Path,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert isolate(photos, out, tmp_path / "first.json") == 0
    Image.fromarray(product_photo(7, (300, 400))).save(photos / "new.jpg")
    (photos / "broken.jpg").write_bytes(b"not really a jpeg")
    page = tmp_path / "sheet.html"
    assert isolate(photos, out, page) == 1  # broken.jpg fails
    text = page.read_text(encoding="utf-8")
    assert text.count('<figure class="card"') == 6
    assert text.count('data-status="skipped"') == 4 and text.count('data-status="done"') == 1
    assert 'data-flags="empty"' in text and 'data-flags="fragments"' in text
    assert "broken.jpg" in text and "failed" in text
    assert "http://" not in text and "https://" not in text, "nothing fetched: it opens from disk"
    keep = tmp_path / "sheet-thumbs" / "mine.webp"
    keep.write_bytes(b"a user's own file")
    (tmp_path / "sheet-thumbs" / "99-out.webp").write_bytes(b"left by an earlier, longer report")
    assert isolate(photos, out, page) == 1
    assert keep.read_bytes() == b"a user's own file", "only the report's own thumbnails are replaced"
    keep.unlink()
    thumbs = sorted((tmp_path / "sheet-thumbs").iterdir())
    assert len(thumbs) == 10, "both thumbnails of the five readable inputs"
    for thumb in thumbs:
        with Image.open(thumb) as image:
            assert image.format == "WEBP" and max(image.size) <= 256
            assert thumb.stat().st_size < 30_000
    with Image.open(tmp_path / "sheet-thumbs" / "0-out.webp") as result:
        assert result.mode == "RGBA", "the result keeps its transparency for the checkerboard"


def _browser_skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"the report's browser test needs Debian's chromium at {CHROMIUM}"
    if importlib.util.find_spec("playwright") is None:
        return "the report's browser test needs Python playwright (the test extra)"
    return None


@pytest.mark.skipif(_browser_skip_reason() is not None, reason=_browser_skip_reason() or "")
def test_the_contact_sheet_in_chromium(isolating: Any, photos: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    out = tmp_path / "out"
    assert isolate(photos, out, tmp_path / "first.json") == 0
    for seed in range(10, 40):  # enough cards to need scrolling, so lazy loading is exercised
        Image.fromarray(product_photo(seed, (240, 320))).save(photos / f"item-{seed}.jpg")
    (photos / "broken.jpg").write_bytes(b"not really a jpeg")
    page_path = tmp_path / "sheet.html"
    assert isolate(photos, out, page_path) == 1
    shots = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 700})
            problems: list[str] = []
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            page.wait_for_function("Array.from(document.images).slice(0, 8).every((img) => img.naturalWidth > 0)")
            page.screenshot(path=str(shots / "qa-report.png"))
            assert "35 of 35 shown" in page.inner_text("#shown")
            _every_thumbnail_loads(page)
            assert not problems, problems
            assert all(url.startswith("file://") for url in requests), requests

            page.select_option("#flag", "empty")
            assert _visible_names(page) == ["blank.jpg"]
            page.select_option("#flag", "*")
            assert _visible_names(page) == ["blank.jpg", "six.png"], "the flagged names are shown"
            assert page.locator(".card:not([hidden]) .flag").all_text_contents() == ["empty", "fragments"]
            page.select_option("#flag", "")
            page.select_option("#status", "failed")
            assert _visible_names(page) == ["broken.jpg"]
            assert "not an image Pillow can read" in page.text_content(".card:not([hidden])"), "with its reason"
            page.select_option("#status", "done")
            assert len(_visible_names(page)) == 30
            assert "33 inputs" not in page.inner_text(".totals") and "35 inputs" in page.inner_text(".totals")
        finally:
            browser.close()


def _visible_names(page: Any) -> list[str]:
    """Text content, not innerText: cards far from the viewport are not rendered (content-visibility)."""
    return sorted(page.locator(".card:not([hidden]) .name").all_text_contents())


def _every_thumbnail_loads(page: Any) -> None:
    """Scroll to the end so every lazy image is asked for, then check each decoded to real pixels."""
    height = page.evaluate("document.body.scrollHeight")
    for top in range(0, height + 700, 350):
        page.evaluate(f"window.scrollTo(0, {top})")
        page.wait_for_timeout(50)
    page.wait_for_function("Array.from(document.images).every((img) => img.complete)", timeout=15_000)
    broken = page.evaluate(
        "Array.from(document.images).filter((img) => !(img.naturalWidth > 0)).map((img) => img.src)"
    )
    assert page.evaluate("document.images.length") == 2 * 34, "two thumbnails per readable input"
    assert not broken, broken
