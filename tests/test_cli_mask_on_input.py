"""`--mask-on-input` (issue #37): the CLI writes `<stem>-mask.png` beside each output, at the input's size,
the product where it is in the photo; a photo whose product cannot be placed gets no mask, a reason and
the `unplaced` flag in the report. Against a real emulator, through `main` as a user runs it."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from placement_photos import case, product_photo
from support import EMULATOR_KEY

from runflow_api.catalogue.cli import main


def test_masks_are_written_beside_the_outputs_at_the_inputs_size(emulator_factory, monkeypatch, tmp_path, capsys):
    emu = emulator_factory(cheap=False, latency=0.05)  # a real matte from the photo's pixels
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    photos = tmp_path / "photos"
    (photos / "tall").mkdir(parents=True)
    wide, tall = case("wide photo"), case("tall photo")
    Image.fromarray(wide.pixels).save(photos / "wide.png")
    Image.fromarray(tall.pixels).save(photos / "tall" / "bottle.jpg", quality=95)
    small = product_photo((1200, 900), (600, 450), (22, 27))  # under 6% of the long side: not looked for
    Image.fromarray(small.pixels).save(photos / "small.png")
    out, report = tmp_path / "out", tmp_path / "report.json"
    assert main(["isolate", str(photos), "--out", str(out), "--resolution", "1K", "-q", "--mask-on-input",
                 "--report", str(report)]) == 0
    for photo, mask_file in ((wide, out / "wide-mask.png"), (tall, out / "tall" / "bottle-mask.png")):
        with Image.open(mask_file) as mask:
            assert mask.mode == "L" and mask.size == photo.footprint.shape[::-1], "the input's size"
            assert photo.iou(np.asarray(mask) / 255) >= 0.95
    assert max(Image.open(out / "wide.png").size) == 1024, "the outputs as before: the result's own canvas"
    assert not (out / "flat-mask.png").exists()
    err = capsys.readouterr().err
    assert "NOT PLACED small.png" in err and "1 unplaced (small.png)" in err
    rows = {row["name"]: row for row in json.loads(report.read_text())["items"]}
    assert rows["small.png"]["flags"][-1] == "unplaced" and "mask" not in rows["small.png"]
    assert rows["wide.png"]["mask"] == str(out / "wide-mask.png") and rows["wide.png"]["flags"] == []
    assert emu.stats["creates"] == 3, "no paid run for the masks"


def test_without_the_flag_no_mask_is_written(emulator_factory, monkeypatch, tmp_path):
    emu = emulator_factory(cheap=False, latency=0.05)
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    Image.fromarray(case("centre").pixels).save(tmp_path / "a.png")
    assert main(["isolate", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--resolution", "1K", "-q"]) == 0
    assert sorted(path.name for path in (tmp_path / "out").iterdir() if not path.name.startswith(".")) == ["a.png"]
