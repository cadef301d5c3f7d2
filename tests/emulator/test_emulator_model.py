"""The stand-in model: canvas sizes for every ratio x resolution, and a real isolation when not cheap."""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests
from emulator_support import Client, red_square_png
from PIL import Image

from runflow_api.emulator import model
from runflow_api.product_isolation import ASPECT_RATIOS, RESOLUTIONS, canvas_size


def output_image(client: Client, aspect_ratio: str, resolution: str, data: bytes | None = None) -> Image.Image:
    run = client.run_to_end(aspect_ratio, resolution, data)
    assert run["status_code"] == "succeeded", run
    download = requests.get(run["output"]["image_urls"][0], timeout=30)
    assert download.headers["Content-Type"] == "image/png"
    assert download.headers["Content-Length"] == str(len(download.content))
    return Image.open(io.BytesIO(download.content))


@pytest.fixture(scope="module")
def cheap_client():
    from runflow_api.emulator import Emulator

    with Emulator(api_key="rf_live_model_tests", latency=0.0, cheap=True) as emulator:
        yield Client(emulator, key="rf_live_model_tests")


@pytest.mark.parametrize("resolution", list(RESOLUTIONS))
@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_cheap_output_has_the_canvas_size_of_every_pair(cheap_client, ratio, resolution):
    image = output_image(cheap_client, ratio, resolution)
    assert image.mode == "RGBA" and image.size == canvas_size(ratio, resolution)
    assert max(image.size) == RESOLUTIONS[resolution]


@pytest.mark.parametrize(("ratio", "resolution"), [("1:1", "1K"), ("16:9", "2K"), ("9:16", "4K")])
def test_real_isolation_keeps_the_product_and_clears_the_background(make_emulator, ratio, resolution):
    client = Client(make_emulator(cheap=False))
    image = output_image(client, ratio, resolution, red_square_png((200, 150), "JPEG"))
    assert image.mode == "RGBA" and image.size == canvas_size(ratio, resolution)
    pixels = np.asarray(image)
    height, width = pixels.shape[:2]
    centre = pixels[height // 2, width // 2]
    assert centre[3] > 250 and centre[0] > 180 and centre[1] < 60, "the red product, opaque"
    assert pixels[2, 2, 3] < 5 and pixels[-3, -3, 3] < 5, "the canvas corners are transparent"
    opaque = np.argwhere(pixels[..., 3] > 128)
    extent = (opaque.max(axis=0) - opaque.min(axis=0) + 1) / np.array([height, width])
    assert 0.75 <= extent.max() <= 0.9, f"the product fills about 85% of the canvas, got {extent}"
    offset = (opaque.min(axis=0) + opaque.max(axis=0)) / 2 / np.array([height, width]) - 0.5
    assert abs(offset).max() < 0.01, f"centred, got an offset of {offset}"


def test_the_result_is_deterministic_and_computed_once(make_emulator, monkeypatch):
    client = Client(make_emulator(cheap=False))
    calls = []
    original = model.isolate
    monkeypatch.setattr(model, "isolate", lambda *args: calls.append(1) or original(*args))
    run = client.run_to_end("4:3", "1K")
    url = run["output"]["image_urls"][0]
    first, second = requests.get(url, timeout=10).content, requests.get(url, timeout=10).content
    assert first == second and len(calls) == 1
    again = client.run_to_end("4:3", "1K")
    assert requests.get(again["output"]["image_urls"][0], timeout=10).content == first
    assert client.emulator.stats["downloads"] == 3


def test_estimated_matte_separates_a_square_from_its_border():
    pixels = np.asarray(Image.open(io.BytesIO(red_square_png((90, 60)))))
    alpha = model.estimate_matte(pixels)
    assert alpha.shape == (60, 90) and alpha.dtype == np.float32
    assert alpha[30, 45] > 0.99 and alpha[:5].max() < 0.01 and alpha[:, :5].max() < 0.01


def test_specks_are_removed_and_pinholes_filled():
    pixels = np.full((100, 100, 3), 128, np.uint8)
    pixels[30:70, 30:70] = (20, 20, 220)
    pixels[50, 50] = (128, 128, 128)  # a pinhole in the product
    pixels[10, 85] = (20, 20, 220)  # a speck on the background
    alpha = model.estimate_matte(pixels)
    assert alpha[50, 50] > 0.9 and alpha[10, 85] < 0.1


def test_own_alpha_is_the_matte():
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., :3] = (10, 200, 10)
    rgba[16:48, 8:56, 3] = 255  # a wide opaque band: its shape must survive, not a colour guess
    out = io.BytesIO()
    Image.fromarray(rgba).save(out, format="PNG")
    result = np.asarray(Image.open(io.BytesIO(model.isolate(out.getvalue(), (400, 400)))))
    opaque = np.argwhere(result[..., 3] > 128)
    height, width = opaque.max(axis=0) - opaque.min(axis=0) + 1
    assert width / height == pytest.approx(48 / 32, rel=0.1)


def test_an_image_without_a_product_gives_a_transparent_canvas():
    out = io.BytesIO()
    Image.new("RGB", (50, 40), (90, 90, 90)).save(out, format="PNG")
    result = Image.open(io.BytesIO(model.isolate(out.getvalue(), (300, 200))))
    assert result.size == (300, 200) and np.asarray(result)[..., 3].max() == 0


def test_box_blur_is_the_local_mean():
    values = np.random.default_rng(1).random((12, 9)).astype(np.float32)
    blurred = model.box_blur(values, 2)
    padded = np.pad(values, 2, mode="edge")
    expected = np.array([[padded[y : y + 5, x : x + 5].mean() for x in range(9)] for y in range(12)])
    assert blurred.shape == values.shape and np.allclose(blurred, expected, atol=1e-5)


def test_inputs_over_the_pixel_limit_or_not_images_are_refused(monkeypatch):
    monkeypatch.setattr(model, "MAX_INPUT_PIXELS", 100)
    with pytest.raises(model.ModelInputError) as caught:
        model.probe(red_square_png((20, 20)))
    assert caught.value.code == "INPUT_TOO_LARGE"
    with pytest.raises(model.ModelInputError) as caught:
        model.probe(b"GIF89a not really")
    assert caught.value.code == "INPUT_DECODE_FAILED"


def test_damaged_pixels_behind_a_valid_header_are_a_decode_failure():
    data = red_square_png((400, 300), "JPEG")
    with pytest.raises(model.ModelInputError) as caught:
        model.isolate(data[: len(data) // 2], (100, 100))
    assert caught.value.code == "INPUT_DECODE_FAILED"
