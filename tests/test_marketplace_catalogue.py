"""One photo -> Amazon, Instagram portrait and Pinterest files from one paid run on the emulator (a real
HTTP server), at the tier chosen before paying; the files' paths under OUT/<preset>/, their report, and
the end-of-run line of their compliance flags."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from runflow_api import render_presets
from runflow_api.catalogue import marketplace_output
from runflow_api.errors import InputRejected
from runflow_api.pictures import marketplace_presets, marketplace_tiers, qa
from runflow_api.pictures.marketplace_checks import FLAGS

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sneaker.jpg"


def test_one_paid_run_gives_every_presets_file(emulator_factory: Callable[..., Any],
                                               client_for: Callable[..., Any], tmp_path: Path) -> None:
    emu = emulator_factory(cheap=False, latency=0.05)
    client = client_for(emu)
    presets = marketplace_presets.select("amazon,instagram-portrait,pinterest")
    with Image.open(SAMPLE) as photo:
        small = marketplace_tiers.choose_tier(presets, "auto", input_size=photo.size)
        assert small.enlarged == ("amazon",), "a 1024 px photo has fewer pixels than Amazon's 1740 px product"
        large = tmp_path / "sneaker-2048.png"
        photo.resize((2048, 1536), Image.Resampling.BICUBIC).save(large)
    choice = marketplace_tiers.choose_tier(presets, "auto", input_size=(2048, 1536))
    assert choice.resolution == "4K" and choice.enlarged == ()  # a 4:3 photo: 2K's 1536 px height is short
    result = client.isolate(large, aspect_ratio="auto", resolution=choice.resolution)
    renderings = render_presets(result, presets)
    paths = [marketplace_output.write(rendering, marketplace_output.output_path(
        tmp_path / "out", rendering.preset, "shoes/red.png")) for rendering in renderings]
    assert [path.relative_to(tmp_path / "out").as_posix() for path in paths] == [
        "amazon/shoes/red.jpg", "instagram-portrait/shoes/red.jpg", "pinterest/shoes/red.jpg"]
    for rendering, path in zip(renderings, paths, strict=True):
        assert rendering.flags == [], rendering.report()
        with Image.open(path) as written:
            assert written.format == "JPEG" and written.size == (rendering.preset.width, rendering.preset.height)
        pixels = np.asarray(Image.open(io.BytesIO(path.read_bytes())))
        assert (pixels[0] == 255).all() and (pixels[-1] == 255).all() and (pixels[:, 0] == 255).all()
    assert len(emu.runs) == 1, "one paid run for three presets"
    again = render_presets(client.isolate(large, aspect_ratio="auto", resolution=choice.resolution),
                           marketplace_presets.select("walmart"))
    assert again[0].flags == [] and len(emu.runs) == 1, "one more preset later costs nothing"
    entry = marketplace_output.report(renderings, paths)
    assert json.loads(json.dumps(entry))["amazon"]["flags"] == [] and entry["pinterest"]["path"] == str(paths[2])


def test_an_output_path_cannot_leave_its_presets_folder(tmp_path: Path) -> None:
    amazon = marketplace_presets.builtin()["amazon"]
    expected = (tmp_path / "amazon/a/b.photo.jpg").resolve()
    assert marketplace_output.output_path(tmp_path, amazon, "a/b.photo.png") == expected
    with pytest.raises(InputRejected, match="outside"):
        marketplace_output.output_path(tmp_path, amazon, "../../etc/x.png")


def test_the_end_of_run_line_names_compliance_flags_in_their_order() -> None:
    line = qa.flagged_line({"over_cap": ["a.jpg"], "enlarged": ["b.jpg", "a.jpg"]}, 2, order=FLAGS)
    assert line == "2 flagged: 1 over_cap (a.jpg), 2 enlarged (b.jpg, a.jpg)"
    assert qa.flagged_line({"empty": ["a.jpg"]}, 1) == "1 flagged: 1 empty (a.jpg)", "the QA flags as before"
