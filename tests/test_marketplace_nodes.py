"""Runflow Marketplace Image and Runflow Save Marketplace File with real torch tensors, as ComfyUI calls the
classic classes: the preset's exact canvas from an RGBA output or image + mask, the file in the output
folder with the preset in its name, its format within its cap, and its compliance flags in the UI."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from comfy_harness import load_pack
from PIL import Image


@pytest.fixture(scope="module")
def pack() -> ModuleType:
    return load_pack()


def isolated(height: int = 1600, width: int = 1200) -> torch.Tensor:
    """An isolation output: a shaded product with a soft edge on a transparent canvas, [1, H, W, 4] 0..1."""
    yy, xx = np.mgrid[0:height, 0:width]
    inside = ((yy - height / 2) / (height * 0.4)) ** 2 + ((xx - width / 2) / (width * 0.3)) ** 2
    alpha = np.clip((1.0 - inside) * 20, 0, 1)
    rgb = np.stack([0.2 + 0.6 * xx / width, 0.3 * np.ones_like(xx), 0.7 - 0.4 * yy / height], axis=2)
    return torch.from_numpy(np.dstack([rgb * (alpha[..., None] > 0), alpha]).astype(np.float32))[None]


def render(pack: ModuleType, image: torch.Tensor, preset: str, **optional):
    node = pack.NODE_CLASS_MAPPINGS["RunflowMarketplaceImage"]()
    return getattr(node, node.FUNCTION)(image, preset, **optional)


def save(pack: ModuleType, image: torch.Tensor, preset: str, **optional):
    node = pack.NODE_CLASS_MAPPINGS["RunflowSaveMarketplaceFile"]()
    return getattr(node, node.FUNCTION)(image, preset, **optional)


def test_a_preset_from_rgba_at_its_exact_size_then_its_file_in_the_output_folder(pack, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNFLOW_OUTPUT_DIR", str(tmp_path))
    canvas, mask, report = render(pack, isolated(), "instagram-portrait")
    assert tuple(canvas.shape) == (1, 1350, 1080, 3) and tuple(mask.shape) == (1, 1350, 1080)
    assert torch.all(canvas[0, 0] == 1.0) and torch.all(canvas[0, :, 0] == 1.0), "exact white borders"
    rows = torch.nonzero(mask[0].amax(dim=1) > 0)
    assert (rows[-1] - rows[0] + 1).item() == pytest.approx(0.85 * 1350, abs=2), "the product spans 85 %"
    assert json.loads(report)["flags"] == []

    saved = save(pack, canvas, "instagram-portrait", mask=mask, filename_prefix="shop/sneaker")
    entry = json.loads(saved["result"][0])
    assert saved["ui"]["images"] == [{"filename": "sneaker_instagram-portrait_00001.jpg", "subfolder": "shop",
                                      "type": "output"}]
    assert saved["ui"]["runflow_marketplace"] == [{"file": "sneaker_instagram-portrait_00001.jpg",
                                                   "preset": "instagram-portrait", "flags": []}]
    written = tmp_path / "shop" / "sneaker_instagram-portrait_00001.jpg"
    with Image.open(written) as image:
        assert image.format == "JPEG" and image.size == (1080, 1350)
        pixels = np.asarray(image)
    assert (pixels[0] == 255).all() and (pixels[-1] == 255).all() and (pixels[:, -1] == 255).all()
    assert entry["flags"] == [] and entry["bytes"] == written.stat().st_size <= 8_000_000
    again = save(pack, canvas, "instagram-portrait", mask=mask, filename_prefix="shop/sneaker")
    assert again["ui"]["images"][0]["filename"] == "sneaker_instagram-portrait_00002.jpg", "never overwritten"


def test_image_and_mask_outputs_and_a_custom_preset(pack, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNFLOW_OUTPUT_DIR", str(tmp_path))
    rgba = isolated()
    canvas, mask, _ = render(pack, rgba[..., :3], "custom", mask=rgba[..., 3],
                             custom_preset="800x600,fill=0.7,bg=#f5f5f5,png,name=my-shop")
    assert tuple(canvas.shape) == (1, 600, 800, 3)
    assert torch.allclose(canvas[0, 0, 0], torch.tensor([245 / 255] * 3))
    saved = save(pack, canvas, "custom", mask=mask, custom_preset="800x600,fill=0.7,bg=#f5f5f5,png,name=my-shop")
    assert saved["ui"]["runflow_marketplace"][0]["flags"] == []
    with Image.open(tmp_path / "runflow_my-shop_00001.png") as image:
        assert image.format == "PNG" and image.getpixel((0, 0)) == (245, 245, 245)


def test_compliance_flags_reach_the_ui_and_the_file_is_still_written(pack, tmp_path, monkeypatch):
    """An Amazon image saved as Walmart's (wrong size), and a cap no JPEG of it can meet."""
    monkeypatch.setenv("RUNFLOW_OUTPUT_DIR", str(tmp_path))
    canvas, mask, _ = render(pack, isolated(), "amazon")
    saved = save(pack, canvas, "walmart", mask=mask)
    assert "wrong_size" in saved["ui"]["runflow_marketplace"][0]["flags"]
    tight = save(pack, canvas, "custom", mask=mask, custom_preset="2000x2000,fill=0.87,cap=2KB,name=tight")
    assert "over_cap" in tight["ui"]["runflow_marketplace"][0]["flags"]
    assert (tmp_path / "runflow_walmart_00001.jpg").is_file() and (tmp_path / "runflow_tight_00001.jpg").is_file()


def test_bad_inputs_are_refused_naming_the_input(pack, tmp_path, monkeypatch):
    errors = pack.runflow_api.errors
    with pytest.raises(errors.InputRejected, match="'custom_preset' is empty"):
        render(pack, isolated(), "custom")
    with pytest.raises(errors.InputRejected, match="no alpha and 'mask' is not connected"):
        render(pack, isolated()[..., :3], "amazon")
    with pytest.raises(errors.InputRejected, match="input 'custom_preset'"):
        render(pack, isolated(), "custom", custom_preset="1200x1500,bg=#ff0000,jpeg")
    monkeypatch.setenv("RUNFLOW_OUTPUT_DIR", str(tmp_path))
    with pytest.raises(errors.InputRejected, match="'filename_prefix'"):
        save(pack, isolated()[..., :3], "amazon", filename_prefix="../outside")
    assert not list(Path(tmp_path).iterdir())
