"""A marketplace preset with a shadow (issue #36): off by default, asked for per preset
(`amazon,shadow=contact`), framed with the product (the fill measured on the product, the pair centred),
drawn under it, and kept off the borders so the background stays exact wherever neither the product nor
its shadow is; the checks judge the file that way in the library, the CLI and the ComfyUI save node."""

from __future__ import annotations

import io
import json
from types import ModuleType

import numpy as np
import pytest
import torch
from comfy_harness import load_pack
from PIL import Image
from support import EMULATOR_KEY, product_photo

from runflow_api.catalogue.cli import main
from runflow_api.errors import InputRejected
from runflow_api.pictures import marketplace_checks, marketplace_presets, marketplace_render
from runflow_api.pictures.marketplace_presets import parse_custom
from runflow_api.pictures.shadows import SHADOW_NONE, ShadowOptions


def stored_result(size: tuple[int, int] = (1600, 1200), box: tuple[int, int] = (900, 700)) -> np.ndarray:
    """An RGBA result: an opaque, flat-bottomed product (a box with rounded top corners) on transparency."""
    width, height = size
    rgba = np.zeros((height, width, 4), np.uint8)
    left, top = (width - box[0]) // 2, (height - box[1]) // 2
    yy, xx = np.mgrid[0:box[1], 0:box[0]]
    rgba[top:top + box[1], left:left + box[0], :3] = np.dstack(
        [40 + xx * 150 // box[0], 60 + yy * 120 // box[1], np.full_like(xx, 140)]).astype(np.uint8)
    rgba[top:top + box[1], left:left + box[0], 3] = 255
    return rgba


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def product_rows(rendering: marketplace_render.Rendering) -> tuple[int, int]:
    """(first, last + 1) row of the product on the canvas, from where the renderer placed it."""
    rows = np.flatnonzero(rendering.product.alpha.max(axis=1))
    return rendering.product.top + int(rows[0]), rendering.product.top + int(rows[-1]) + 1


def test_a_preset_string_can_start_from_a_shipped_preset_and_ask_for_a_shadow() -> None:
    amazon = marketplace_presets.builtin()["amazon"]
    assert amazon.shadow == ShadowOptions() and amazon.shadow.mode == SHADOW_NONE, "off by default"
    assert "shadow" not in amazon.describe(), "a preset without a shadow is described as before shadows existed"
    shaded = parse_custom("amazon,shadow=contact,shadow_strength=0.4,shadow_softness=0.7")
    assert (shaded.name, shaded.width, shaded.height, shaded.fill_min, shaded.fill_max, shaded.cap) == (
        "amazon", 2000, 2000, 0.85, 0.90, 10_000_000)
    assert shaded.shadow == ShadowOptions("contact", 0.4, 0.7)
    assert shaded.describe()["shadow"] == "contact" and shaded.describe()["shadow_strength"] == 0.4
    assert parse_custom("1200x1500,shadow=drop").shadow == ShadowOptions("drop")
    assert parse_custom("amazon,png,name=shop").format == "png", "a shipped preset's parts can be changed"


@pytest.mark.parametrize("spec, says", [
    ("amazon,shadow=soft", "shadow must be one of"),
    ("amazon,shadow=contact,shadow_strength=1.5", "shadow_strength must be from 0 to 1"),
    ("amazon,shadow_softness=much", "shadow_softness 'much' is not a number"),
    ("amazon,shadow", "I cannot read 'shadow'"),
])
def test_a_bad_shadow_in_a_preset_is_refused_naming_the_preset(spec: str, says: str) -> None:
    with pytest.raises(InputRejected, match=says) as caught:
        parse_custom(spec, where="--preset")
    assert f"--preset {spec!r}" in str(caught.value)


@pytest.mark.parametrize("mode", ["contact", "drop"])
def test_product_and_shadow_are_framed_together_and_the_background_stays_exact(mode: str) -> None:
    plain = marketplace_render.render(stored_result(), parse_custom("1000x1000,png,name=plain"))
    shaded = marketplace_render.render(stored_result(), parse_custom(f"1000x1000,png,name=plain,shadow={mode}"))
    assert plain.flags == [] and shaded.flags == [], shaded.report()
    assert shaded.report()["fill"] == pytest.approx(plain.report()["fill"], abs=0.002), "fill measured on the product"
    assert shaded.placement.width == plain.placement.width, "the product keeps its scale when the pair fits"
    pixels, white = decoded(shaded.data).astype(int), 255
    top, bottom = product_rows(shaded)
    left, right = shaded.placement.left, shaded.placement.left + shaded.placement.width
    below = pixels[bottom + 2:bottom + 12, left + 40:right - 40]
    assert (below < white).any(axis=2).mean() > 0.9, "the rows under the product are darker"
    if mode == "contact":
        assert (pixels[:top] == white).all(), "the rows above the product stay exactly white"
    for border in (pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]):
        assert (border == white).all(), "the shadow is kept off the borders"
    was = plain.placement
    interior = decoded(plain.data)[was.top + 5:was.top + was.height - 5, was.left + 5:was.left + was.width - 5]
    assert (decoded(shaded.data)[top + 5:bottom - 5, left + 5:right - 5] == interior).all(), "product unchanged"
    shift = (top + bottom) / 2 - (was.top + was.top + was.height) / 2
    extent = int(np.flatnonzero((pixels != white).any(axis=(1, 2)))[-1]) + 1 - bottom
    assert 0 <= -shift <= extent, "moved up by no more than the shadow reaches below"


def test_the_background_check_leaves_out_the_shadow_only_where_it_was_drawn() -> None:
    preset = parse_custom("1000x1000,shadow=contact,name=shop")
    rendering = marketplace_render.render(stored_result(), preset)
    assert rendering.flags == []
    flags, measured = marketplace_checks.check(rendering.data, preset, rendering.product)  # shadow not known
    assert "background" in flags and measured.background_off > 1000, "the shadow's pixels are not background"


def test_a_shadow_that_cannot_fit_beside_a_large_fill_shrinks_the_product_and_says_fill() -> None:
    preset = parse_custom("1000x1000,fill=0.97,png,shadow=drop,shadow_softness=1,name=tight")
    rendering = marketplace_render.render(stored_result(box=(1200, 500)), preset)
    assert "fill" in rendering.flags and rendering.report()["fill"] < 0.96, rendering.report()
    pixels = decoded(rendering.data)
    for border in (pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]):
        assert (border == 255).all(), "the product shrank instead of its shadow reaching the border"


def test_render_all_gives_each_preset_its_own_shadow_from_one_cut() -> None:
    presets = [parse_custom("800x800,png,name=a"), parse_custom("800x800,png,name=b,shadow=contact")]
    plain, shaded = marketplace_render.render_all(stored_result(), presets)
    assert plain.data != shaded.data and plain.flags == shaded.flags == []
    assert plain.data == marketplace_render.render(stored_result(), presets[0]).data
    assert shaded.data == marketplace_render.render(stored_result(), presets[1]).data


@pytest.fixture(scope="module")
def pack() -> ModuleType:
    return load_pack()


def test_the_comfyui_nodes_draw_the_presets_shadow_and_the_save_node_checks_around_it(pack, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNFLOW_OUTPUT_DIR", str(tmp_path))
    rgba = torch.from_numpy(stored_result((1600, 1600), (900, 1300)).astype(np.float32) / 255)[None]
    spec = "instagram-portrait,shadow=contact"
    image_node = pack.NODE_CLASS_MAPPINGS["RunflowMarketplaceImage"]()
    canvas, mask, report = getattr(image_node, image_node.FUNCTION)(rgba, "custom", custom_preset=spec)
    assert json.loads(report)["flags"] == []
    rows = np.flatnonzero(mask[0].amax(dim=1).numpy() > 0)
    under = canvas[0, rows[-1] + 3, :, :].numpy()
    assert (under < 1.0).any(), "the canvas has the shadow under the product"
    assert (mask[0, rows[-1] + 3] == 0).all(), "the mask is the product's alone"
    save_node = pack.NODE_CLASS_MAPPINGS["RunflowSaveMarketplaceFile"]()
    saved = getattr(save_node, save_node.FUNCTION)(canvas, "custom", mask=mask, custom_preset=spec)
    assert saved["ui"]["runflow_marketplace"][0]["flags"] == [], "the shadow is drawn again from the mask"
    unaware = getattr(save_node, save_node.FUNCTION)(canvas, "instagram-portrait", mask=mask)
    assert unaware["ui"]["runflow_marketplace"][0]["flags"] == ["background"], "a preset without it would flag it"


def test_the_cli_adds_a_shadowed_preset_to_a_stored_catalogue_for_nothing(emulator_factory, monkeypatch, tmp_path):
    emu = emulator_factory(cheap=False, latency=0.05)
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    monkeypatch.setenv("RUNFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RUNFLOW_DATA_DIR", str(tmp_path / "data"))
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    Image.fromarray(product_photo(3, size=(480, 360))).save(photos / "a.jpg")
    assert main(["isolate", str(photos), "--out", str(out), "--formats", "amazon", "-q"]) == 0
    plain = np.asarray(Image.open(out / "amazon" / "a.jpg").convert("RGB")).copy()
    paid = emu.stats["creates"]
    assert main(["isolate", str(photos), "--out", str(out), "--preset", "amazon,shadow=contact", "-q",
                 "--report", str(tmp_path / "report.json")]) == 0
    assert emu.stats["creates"] == paid, "a shadow is rendered from the stored result"
    shaded = np.asarray(Image.open(out / "amazon" / "a.jpg").convert("RGB"))
    assert (shaded != plain).any() and (shaded[0] == 255).all() and (shaded[-1] == 255).all()
    entry = json.loads((tmp_path / "report.json").read_text())
    summary = entry["summary"]["formats"]["presets"][0]
    assert summary["shadow"] == "contact" and entry["summary"]["formats"]["flagged"] == 0


def test_the_shadow_reaches_no_file_of_a_preset_that_does_not_ask() -> None:
    amazon = marketplace_presets.builtin()["amazon"]
    rendering = marketplace_render.render(stored_result(), amazon)
    pixels = decoded(rendering.data).astype(int)
    _, bottom = product_rows(rendering)
    assert (pixels[bottom + 8:] == 255).all(), "no shadow unless the preset asks"
