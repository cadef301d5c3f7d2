"""The `enlarged` QA flag: an input scaled up more than 4x to reach the chosen resolution is flagged (a
64 px photo upscaled to 1K was returned without a word). Judged from the input's size and the result's,
on every result, paid or cached; the matte's stored flags and their judge are unchanged."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from support import EMULATOR_KEY, product_photo

from runflow_api.catalogue.cli import main
from runflow_api.pictures import qa


def test_the_rule() -> None:
    assert qa.input_flags((64, 48), (1024, 1024)) == ["enlarged"]
    assert qa.input_flags((256, 256), (1024, 1024)) == []  # exactly 4x is not "more than 4x"
    assert qa.input_flags((255, 255), (1024, 1024)) == ["enlarged"]
    assert qa.input_flags((1000, 100), (1024, 1024)) == []  # a strip fits by its width: not enlarged
    assert qa.input_flags((256, 256), (1024, 1024), qa.Thresholds(enlarged_above=2.0)) == ["enlarged"]
    assert "enlarged" in qa.FLAGS


def test_the_matte_judge_is_unchanged() -> None:
    """Flags stored with cached results under this judge stay valid: adding `enlarged` (never stored)
    must not make every cached result be decoded and judged again."""
    assert qa.JUDGE == "qa-1:38574686a809"
    assert qa.stored({"qa": {"judge": qa.JUDGE, "flags": ["tiny"]}}) == ["tiny"]


def test_a_small_photo_is_flagged_paid_and_cached(emu, client_for) -> None:
    client = client_for(emu)
    small = product_photo(1, (60, 80))
    paid = client.isolate(small, aspect_ratio="1:1", resolution="1K")
    cached = client.isolate(small, aspect_ratio="1:1", resolution="1K")
    assert cached.cached
    assert "enlarged" in paid.flags and "enlarged" in cached.flags
    assert "enlarged" not in client.isolate(product_photo(1, (300, 400)), aspect_ratio="1:1", resolution="1K").flags
    assert "enlarged" in client.isolate(product_photo(1, (300, 400)), aspect_ratio="1:1", resolution="2K").flags


def test_the_cli_names_enlarged_inputs(emu, monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(product_photo(2, (48, 64))).save(photos / "thumb.jpg")
    Image.fromarray(product_photo(3, (400, 300))).save(photos / "big.jpg")
    report = tmp_path / "r.json"
    assert main(["isolate", str(photos), "--out", str(tmp_path / "out"), "--resolution", "1K", "-q",
                 "--report", str(report)]) == 0
    assert "1 enlarged (thumb.jpg)" in capsys.readouterr().err
    flags = {Path(row["input"]).name: row["flags"] for row in json.loads(report.read_text())["items"]}
    assert "enlarged" in flags["thumb.jpg"] and "enlarged" not in flags["big.jpg"]
