"""Runflow Load Photo with real torch tensors: a photo from ComfyUI's input folder (HEIC and AVIF too), upright,
in sRGB through its profile, with LoadImage's IMAGE/MASK shapes and mask polarity; the dropdown lists the
folder's photos and has an upload button in both renderings; a changed file changes the fingerprint; and
the pixels are exactly what the CLI reads, so the isolation node finds the CLI's result in the cache.

ComfyUI's `folder_paths` is stood in by a module with its three folder functions (the node asks it for
nothing else), as tests/test_pack_loading.py does for the user directory.
"""

from __future__ import annotations

import importlib
import io
import sys
import types
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
import torch
from colour_science import icc_profile
from comfy_harness import load_pack
from PIL import Image
from support import EMULATOR_KEY, product_photo

PACK = load_pack()
nodes = PACK.nodes
images = importlib.import_module(f"{PACK.__name__}.runflow_api.pictures.images")
LoadPhoto = nodes.NODE_CLASS_MAPPINGS["RunflowLoadPhoto"]


@pytest.fixture
def comfy_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folders = {kind: tmp_path / kind for kind in ("input", "output", "temp")}
    for folder in folders.values():
        folder.mkdir()
    stand_in = types.ModuleType("folder_paths")
    for kind, folder in folders.items():
        setattr(stand_in, f"get_{kind}_directory", lambda folder=folder: str(folder))
    monkeypatch.setitem(sys.modules, "folder_paths", stand_in)
    return folders["input"]


def load(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    return LoadPhoto().load_photo(image=name, unique_id="3")


def test_a_photo_becomes_image_and_mask_like_load_image(comfy_folders: Path) -> None:
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., :3] = (30, 120, 200)
    rgba[10:30, 20:40, 3] = 255  # opaque in the middle, transparent around it
    Image.fromarray(rgba).save(comfy_folders / "cut.png")
    image, mask = load("cut.png")
    assert image.shape == (1, 40, 60, 3) and mask.shape == (1, 40, 60)
    assert image.dtype == mask.dtype == torch.float32
    assert torch.allclose(image[0, 20, 30], torch.tensor([30, 120, 200]) / 255)
    assert float(mask[0, 20, 30]) == 0.0 and float(mask[0, 0, 0]) == 1.0, "LoadImage's polarity: 1 = transparent"
    Image.fromarray(product_photo(1)).save(comfy_folders / "opaque.jpg")
    _, opaque_mask = load("opaque.jpg")
    assert opaque_mask.shape == (1, 96, 128) and float(opaque_mask.max()) == 0.0


def test_heic_avif_orientation_and_colour_profile(comfy_folders: Path) -> None:
    flat = np.full((48, 64, 3), (200, 60, 50), np.uint8)
    buffer = io.BytesIO()
    pillow_heif.from_pillow(Image.fromarray(flat)).save(buffer, quality=95, icc_profile=icc_profile("display-p3"))
    (comfy_folders / "IMG_0001.HEIC").write_bytes(buffer.getvalue())
    image, _ = load("IMG_0001.HEIC")
    red, green, _ = (image[0, 24, 32] * 255).tolist()
    assert red > 210 and green < 50, "P3 (200, 60, 50) is about sRGB (217, 42, 39): the profile was applied"
    Image.fromarray(flat).save(comfy_folders / "shot.avif", quality=95)
    assert load("shot.avif")[0].shape == (1, 48, 64, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, as a phone held upright saves it
    Image.fromarray(flat).save(comfy_folders / "portrait.jpg", exif=exif)
    assert load("portrait.jpg")[0].shape == (1, 64, 48, 3)


def test_the_dropdown_lists_the_photos_with_an_upload_button(comfy_folders: Path) -> None:
    for name in ("b.heic", "a.jpg", "c.avif"):
        (comfy_folders / name).write_bytes(b"x")
    (comfy_folders / "notes.txt").write_text("x")
    (comfy_folders / "sub").mkdir()
    choices, options = LoadPhoto.INPUT_TYPES()["required"]["image"]
    assert choices == ["a.jpg", "b.heic", "c.avif"]
    assert options["image_upload"] is True and "tooltip" in options
    (comfy_folders / "d.png").write_bytes(b"x")  # uploaded since: listed the next time ComfyUI asks
    assert LoadPhoto.INPUT_TYPES()["required"]["image"][0][-1] == "d.png"


def test_the_v3_rendering_has_the_upload_button(comfy_folders: Path) -> None:
    """The V3 schema's dropdown, rendered through a stand-in of ComfyUI's io module that records what
    it is given (the real one is checked in tests/test_comfyui_real.py)."""
    (comfy_folders / "a.jpg").write_bytes(b"x")
    v3 = importlib.import_module(f"{PACK.__name__}.node_machinery.v3")
    given: dict[str, object] = {}

    class Combo:
        @staticmethod
        def Input(name: str, **options: object) -> dict[str, object]:
            given.update(options, name=name)
            return given

    io = types.SimpleNamespace(Combo=Combo, UploadType=types.SimpleNamespace(image="image_upload"))
    v3._input(io, nodes.LOAD_PHOTO.inputs[0])
    assert given["name"] == "image" and given["options"] == ["a.jpg"] and given["upload"] == "image_upload"


def test_missing_empty_and_escaping_names_are_refused_before_the_queue_runs(comfy_folders: Path) -> None:
    assert LoadPhoto.VALIDATE_INPUTS(image="").startswith("Input 'image' is empty")
    assert "not in ComfyUI's input folder" in LoadPhoto.VALIDATE_INPUTS(image="gone.jpg")
    assert "outside" in LoadPhoto.VALIDATE_INPUTS(image="../secret.jpg")
    Image.new("RGB", (8, 8)).save(comfy_folders.parent / "output" / "result.png")
    assert LoadPhoto.VALIDATE_INPUTS(image="result.png [output]") is True
    assert load("result.png [output]")[0].shape == (1, 8, 8, 3)


def test_a_text_file_with_a_photo_name_is_refused_by_name(comfy_folders: Path) -> None:
    (comfy_folders / "fake.jpg").write_text("not a photo")
    with pytest.raises(Exception, match=r"fake\.jpg.*is not an image"):
        load("fake.jpg")


def test_the_fingerprint_follows_the_file(comfy_folders: Path) -> None:
    path = comfy_folders / "a.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(path)
    first = LoadPhoto.IS_CHANGED(image="a.png")
    assert LoadPhoto.IS_CHANGED(image="a.png") == first
    Image.new("RGB", (8, 8), (9, 9, 9)).save(path)
    assert LoadPhoto.IS_CHANGED(image="a.png") != first


def test_the_node_and_the_cli_read_the_same_pixels_so_pay_once(comfy_folders: Path, emu, client_for) -> None:
    """A P3-tagged JPEG: the node's tensor, through the isolation node's tensor path, has the cache key the
    library (and so the CLI) gives the file itself."""
    photo = Image.fromarray(product_photo(3))
    photo.save(comfy_folders / "p3.jpg", quality=95, icc_profile=icc_profile("display-p3"))
    image, _ = load("p3.jpg")
    tensors = importlib.import_module(f"{PACK.__name__}.node_machinery.tensors")
    [from_node] = tensors.tensor_to_arrays(image)
    from_file = images.to_array(comfy_folders / "p3.jpg")
    assert np.array_equal(from_node, from_file)
    client = client_for(emu, api_key=EMULATOR_KEY)
    file_key = client.isolate(comfy_folders / "p3.jpg", aspect_ratio="1:1", resolution="1K").cache_key
    assert client.isolate(from_node, aspect_ratio="1:1", resolution="1K").cache_key == file_key
