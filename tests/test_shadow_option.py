"""`shadow` as a rendering option users reach (issue #36): the CLI, the library and the nodes draw it from
the stored result, for free, with the margin framing product and shadow together.

The first test is the issue's check as a new user would do it: the emulator in its own process, the CLI
as a command, paid runs counted from the emulator's balance. The engine itself (geometry, compositing,
speed) is tested in test_shadows.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from node_support import PACK, bound_to, run_node
from PIL import Image
from support import EMULATOR_KEY, alpha_bounds, emulator_process, paid_runs_since, product_photo

from runflow_api import InputRejected, RunflowClient
from runflow_api.pictures.post_processing import PostProcessing
from runflow_api.pictures.shadows import ShadowOptions, shadow_box

REPO = Path(__file__).resolve().parents[1]
PHOTOS = ("sneaker.jpg", "blob.jpg")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The bundled sample a new user starts with, and a small generated product shot."""
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(REPO / "examples" / "sneaker.jpg", photos / "sneaker.jpg")
    Image.fromarray(product_photo(3)).save(photos / "blob.jpg")
    return photos


def read(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image).copy()


def test_the_issue_checks_with_the_cli_and_the_emulator_in_their_own_processes(folder, tmp_path):
    """1. A plain run pays. 2. `--shadow contact --background '#ffffff'` pays 0: just below the product
    darker than white, above it exactly white, the product's interior unchanged. 3. The same without a
    background: RGBA whose pixels below the product are dark and partly transparent."""
    with emulator_process() as (base_url, env):
        out = tmp_path / "out"
        runs = {"plain": [], "on white": ["--shadow", "contact", "--background", "#ffffff"],
                "transparent": ["--shadow", "contact"]}
        paid, pictures = [], {}
        with RunflowClient(EMULATOR_KEY, base_url, cache=False, data_dir=tmp_path / "watcher") as watcher:
            for name, options in runs.items():
                start = watcher.balance().amount
                assert start is not None
                done = subprocess.run(
                    [sys.executable, "-m", "runflow_api", "isolate", str(folder), "--out", str(out), "--resolution",
                     "1K", "-q", *options], env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
                assert done.returncode == 0, done.stderr
                paid.append(paid_runs_since(watcher, start))
                pictures[name] = {photo: read(out / photo.replace(".jpg", ".png")) for photo in PHOTOS}
        assert paid == [2, 0, 0], "only the plain run pays; a shadow is drawn from the stored results"
        for photo in PHOTOS:
            plain, on_white, transparent = (pictures[name][photo] for name in runs)
            assert plain.shape[2] == 4 and on_white.shape[2] == 3 and transparent.shape[2] == 4
            top, bottom, left, right = alpha_bounds(plain[..., 3])
            middle = slice(left + (right - left) // 4, right - (right - left) // 4)
            below = on_white[bottom:bottom + 4, middle]
            assert below.mean() < 250 and (below <= 255).all(), f"{photo}: just below the product is darker"
            assert (on_white[:top] == 255).all(), f"{photo}: above the product stays exactly white"
            interior = plain[..., 3] == 255
            assert np.array_equal(on_white[interior], plain[..., :3][interior]), f"{photo}: product unchanged"
            assert np.array_equal(transparent[interior], plain[interior]), f"{photo}: product unchanged (RGBA)"
            under = transparent[bottom:bottom + 4, middle]
            assert under[..., :3].max() < 40, f"{photo}: the shadow is dark"
            assert (under[..., 3] > 0).any() and (under[..., 3] < 255).all(), f"{photo}: partly transparent"
            assert (transparent[:top] == plain[:top]).all(), f"{photo}: the shadow reaches nothing above"


def test_the_library_draws_it_from_the_cache_and_writes_no_original_bytes(emulator_factory, client_for) -> None:
    emu = emulator_factory(cheap=False)
    client = client_for(emu)
    plain = client.isolate(product_photo(4), aspect_ratio="1:1", resolution="1K")
    shaded = client.isolate(product_photo(4), aspect_ratio="1:1", resolution="1K", shadow="drop",
                            shadow_strength=0.8, shadow_softness=0.2)
    assert emu.stats["creates"] == 1 and shaded.cached and shaded.cache_key == plain.cache_key
    assert plain.image_bytes and not shaded.image_bytes, "a saver must encode the shadowed pixels, not the bytes sent"
    before, after = np.asarray(plain.image), np.asarray(shaded.image)
    assert after[..., 3].sum() > before[..., 3].sum(), "the shadow is in the alpha"
    with pytest.raises(InputRejected, match="shadow_strength must be from 0 to 1"):
        client.isolate(product_photo(4), aspect_ratio="1:1", resolution="1K", shadow="contact", shadow_strength=1.5)
    with pytest.raises(InputRejected, match="shadow must be one of"):
        client.isolate(product_photo(4), aspect_ratio="1:1", resolution="1K", shadow="soft")
    assert emu.stats["creates"] == 1


def test_strength_and_softness_alone_draw_nothing_and_none_is_the_default() -> None:
    assert PostProcessing().shadow == "none" and not PostProcessing().changes_pixels()
    assert not PostProcessing(shadow_strength=1.0, shadow_softness=0.0).changes_pixels()
    assert PostProcessing(shadow="contact").changes_pixels(alpha_only=True), "the shadow is in the mask too"


def standing_product(height: int = 200, width: int = 200) -> np.ndarray:
    """A grey box standing low in a transparent canvas, too big for a 20 % margin."""
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[25:195, 15:185] = (120, 120, 120, 255)
    return rgba


@pytest.mark.parametrize("mode", ["contact", "drop"])
def test_a_margin_frames_product_and_shadow_together(mode: str) -> None:
    """The product's fill is the margin's (measured on the product alone), the shadow is not cut by the
    canvas, and the product sits off-centre by no more than the shadow's own extent."""
    rgba = standing_product()
    alone = PostProcessing(margin=20).draw(rgba)
    shaded = PostProcessing(margin=20, shadow=mode).draw(rgba)
    top, bottom, left, right = alpha_bounds(alone[..., 3])
    product = shaded[..., 3] == 255
    rows, cols = np.flatnonzero(product.any(axis=1)), np.flatnonzero(product.any(axis=0))
    assert (rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0]) == (bottom - top, right - left), "same fill"
    assert not shaded[-1, :, 3].any() and not shaded[:, -1, 3].any(), "the shadow fades inside the canvas"
    reach = shadow_box(alone[..., 3], ShadowOptions(mode))
    assert reach is not None
    extent_x = max(0, reach[2] - right) + max(0, left - reach[0])
    extent_y = max(0, reach[3] - bottom) + max(0, top - reach[1])
    assert (top + bottom) / 2 == 100 and (left + right) / 2 == 100, "the margin alone centres the product"
    assert 0 < top - rows[0] <= extent_y, "moved up to make room for the shadow below, by less than its extent"
    assert abs(int(cols[0]) - left) <= extent_x
    assert np.array_equal(shaded[product, :3], alone[..., :3][alone[..., 3] == 255]), "the product's own pixels"


def test_the_node_draws_it_into_every_output_from_the_cache(emulator_factory, monkeypatch, tmp_path) -> None:
    """Real tensors: the shadow darkens the background colour in `image`, and is in `mask` and `rgba`."""
    emu = emulator_factory(cheap=False)
    monkeypatch.setattr(PACK.node_machinery.execution, "client_factory", bound_to(emu, tmp_path))
    PACK.runflow_api.money.recent.shared_recent_results().clear()
    photo = torch.from_numpy(product_photo(6)).float().div(255).unsqueeze(0)
    image, mask, rgba, _, _ = run_node(photo, background="#ffffff")
    shaded_image, shaded_mask, shaded_rgba, info, _ = run_node(photo, background="#ffffff", shadow="contact",
                                                            shadow_strength=0.7)
    assert emu.stats["creates"] == 1 and '"cached": true' in info
    assert shaded_image.shape == image.shape and shaded_mask.shape == mask.shape
    top, bottom, left, right = alpha_bounds(mask[0].numpy())
    middle = slice(left + (right - left) // 4, right - (right - left) // 4)
    assert float(shaded_image[0, bottom:bottom + 3, middle].mean()) < 0.98, "darker just below the product"
    assert torch.equal(shaded_image[0, :top], image[0, :top]), "exact white above it"
    assert float(shaded_mask[0, bottom:bottom + 3, middle].max()) > 0, "the mask holds the shadow's opacity"
    assert torch.equal(shaded_rgba[..., 3], shaded_mask), "rgba's alpha is the mask"
    solid = mask == 1
    assert torch.equal(shaded_image[solid], image[solid]), "the product's own pixels are unchanged"
    assert float(shaded_rgba[0, bottom:bottom + 3, middle, :3].max()) == 0.0, "black in rgba"
