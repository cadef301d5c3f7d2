"""`place_on_input` through the library against a real emulator: the result's product found in the photo
from the pixels alone, wherever it sits, in any aspect, EXIF-rotated, re-rendered; and a clear refusal
(mask None, a reason, the `unplaced` flag) when it is not there. The emulator crops, scales and centres
the product on a new canvas, as the service does; the placement never reads how it did that."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter
from placement_photos import CASES, ProductPhoto, case, product_photo

from runflow_api import ImageURL, InputRejected, Placement, place_on_input
from runflow_api.pictures import qa

IOU = 0.95  # the bar: the mask on the input overlaps the true footprint this much


@pytest.fixture
def soft(emulator_factory):
    return emulator_factory(cheap=False, latency=0.05)  # a real matte from the photo's pixels


def assert_placed(placement: Placement, photo: ProductPhoto) -> None:
    assert placement.placed and placement.reason is None
    assert placement.mask is not None and placement.mask.dtype == np.float32
    assert placement.mask.shape == photo.footprint.shape, "the mask is the input's size"
    assert placement.mask.min() >= 0.0 and placement.mask.max() <= 1.0
    assert photo.iou(placement.mask) >= IOU, f"IoU {photo.iou(placement.mask):.3f}"
    rows, cols = np.flatnonzero(photo.footprint.any(axis=1)), np.flatnonzero(photo.footprint.any(axis=0))
    x, y, w, h = placement.box
    assert abs(x - cols[0]) <= 6 and abs(y - rows[0]) <= 6, "box: the product's corner in the input"
    assert abs(w - len(range(cols[0], cols[-1] + 1))) <= 10 and abs(h - (rows[-1] - rows[0] + 1)) <= 10
    assert 0.9 <= placement.score <= 1.0


@pytest.mark.parametrize("name", list(CASES))
def test_the_product_is_placed_where_it_is_in_the_photo(name, soft, client_for):
    photo = case(name)
    result = client_for(soft).isolate(photo.pixels, aspect_ratio="1:1", resolution="1K")
    assert result.image.size == (1024, 1024), "re-framed on a square canvas: the result's mask cannot line up"
    placement = place_on_input(photo.pixels, result)
    assert_placed(placement, photo)
    rgba = placement.rgba
    assert rgba is not None and rgba.shape == (*photo.footprint.shape, 4) and rgba.dtype == np.uint8
    assert np.array_equal(rgba[..., :3], photo.pixels), "the cut-out keeps the photo's own pixels"
    assert np.array_equal(rgba[..., 3], np.round(placement.mask * 255).astype(np.uint8))
    assert "unplaced" not in result.flags


def test_a_path_a_pil_image_and_an_array_are_placed_alike(soft, client_for, tmp_path):
    photo = case("near the top-left")
    path = tmp_path / "photo.png"
    Image.fromarray(photo.pixels).save(path)
    result = client_for(soft).isolate(path, resolution="1K")
    masks = [place_on_input(image, result).mask for image in (path, str(path), Image.open(path), photo.pixels)]
    assert all(mask is not None and np.array_equal(mask, masks[0]) for mask in masks)
    assert photo.iou(masks[0]) >= IOU


def test_an_exif_rotated_photo_is_placed_on_its_upright_canvas(soft, client_for, tmp_path):
    """A phone stores a portrait sideways with EXIF orientation 6; the upload turns it upright, and the
    mask must line up with the upright photo (the canvas the user sees and ComfyUI's LoadImage gives)."""
    upright = product_photo((700, 1100), (260, 330), (170, 230), seed=2)
    stored = Image.fromarray(upright.pixels).transpose(Image.Transpose.ROTATE_90)  # 1100 wide, 700 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    path = tmp_path / "portrait.jpg"
    stored.save(path, quality=95, exif=exif)
    result = client_for(soft).isolate(path, resolution="1K")
    placement = place_on_input(path, result)
    assert placement.mask is not None and placement.mask.shape == (1100, 700), "the upright canvas"
    assert upright.iou(placement.mask) >= IOU


@pytest.mark.parametrize("render", ["blurred and colour-shifted", "sharpened and brighter"])
def test_a_re_rendered_result_is_still_placed(render, soft, client_for):
    """The model may re-render the product: blur, shift its colours, sharpen. NCC ignores brightness and
    contrast, and the coarse search ignores detail, so it is still found."""
    photo = case("centre", seed=1)
    result = client_for(soft).isolate(photo.pixels, resolution="1K")
    image = result.image
    if render == "blurred and colour-shifted":
        rgb = np.asarray(image.filter(ImageFilter.GaussianBlur(2.5))).astype(np.float64)
        rgb[..., 0] = rgb[..., 0] * 0.8 + 10
        rgb[..., 2] = rgb[..., 2] * 1.15 + 20
        changed = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGBA")
    else:
        changed = ImageEnhance.Brightness(image.filter(ImageFilter.UnsharpMask(3, 200, 2))).enhance(1.2)
        changed.putalpha(image.getchannel("A"))
    assert np.abs(np.asarray(changed, np.int16) - np.asarray(image, np.int16))[..., :3].mean() > 5
    re_rendered = dataclasses.replace(result, image=changed, images=[changed])
    placement = place_on_input(photo.pixels, re_rendered)
    assert_placed(placement, photo)
    assert "unplaced" not in re_rendered.flags


def test_a_photo_without_the_product_is_not_placed_and_the_result_is_flagged(soft, client_for):
    photo = case("centre")
    result = client_for(soft).isolate(photo.pixels, resolution="1K")
    before = list(result.flags)
    elsewhere = np.random.default_rng(5).integers(0, 256, photo.pixels.shape, dtype=np.uint8)  # no product in it
    placement = place_on_input(elsewhere, result)
    assert placement.mask is None and placement.rgba is None and placement.box is None
    assert placement.reason is not None and "not found in the photo" in placement.reason
    assert placement.score < 0.5
    assert result.flags == [*before, "unplaced"], "the QA hint, after the matte's own flags"
    place_on_input(elsewhere, result)
    assert result.flags.count("unplaced") == 1


def test_the_product_upside_down_is_not_placed(soft, client_for):
    """The same product, outline and background, turned upside down: the service never rotates, so this
    is not the photo the result came from, although a part of the product still matches (about 0.64)."""
    photo = case("centre")
    result = client_for(soft).isolate(photo.pixels, resolution="1K")
    placement = place_on_input(np.ascontiguousarray(np.rot90(photo.pixels, 2)), result)
    assert placement.mask is None and "unplaced" in result.flags
    assert 0.3 < placement.score < 0.75


def test_a_result_without_a_product_or_without_alpha_says_why(soft, client_for):
    photo = case("centre")
    result = client_for(soft).isolate(photo.pixels, resolution="1K")
    empty = Image.new("RGBA", result.image.size, (0, 0, 0, 0))
    assert "matte is empty" in (place_on_input(photo.pixels, empty).reason or "")
    opaque = result.image.convert("RGB")
    assert "no alpha channel" in (place_on_input(photo.pixels, opaque).reason or "")
    flat = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    flat.paste((200, 30, 30, 255), (100, 100, 300, 300))
    assert "not found in the photo" in (place_on_input(photo.pixels, flat).reason or ""), "a red square elsewhere"


def flat_square_photo(size: tuple[int, int], box: tuple[int, int, int, int]) -> ProductPhoto:
    pixels = np.full((size[1], size[0], 3), 230, np.uint8)
    footprint = np.zeros((size[1], size[0]), bool)
    left, top, right, bottom = box
    pixels[top:bottom, left:right] = (200, 40, 40)
    footprint[top:bottom, left:right] = True
    return ProductPhoto(pixels, footprint)


def test_a_product_of_one_flat_colour_is_placed_by_its_outline(soft, client_for):
    """Nothing inside the product to correlate: it is found by its outline against the photo's background."""
    client = client_for(soft)
    for photo in (flat_square_photo((800, 600), (250, 150, 550, 450)), flat_square_photo((96, 96), (24, 24, 72, 72))):
        result = client.isolate(photo.pixels, resolution="1K")
        assert_placed(place_on_input(photo.pixels, result), photo)
        assert "unplaced" not in result.flags


def test_a_product_too_small_to_look_for_is_not_placed(soft, client_for):
    """The search starts at a product 6% of the photo's long side: a smaller one is flagged, not guessed."""
    photo = product_photo((1600, 1200), (800, 600), (30, 36))
    result = client_for(soft).isolate(photo.pixels, resolution="1K")
    placement = place_on_input(photo.pixels, result)
    assert placement.mask is None and "unplaced" in result.flags


def test_a_url_or_nonsense_is_refused_with_what_to_pass(soft, client_for):
    photo = case("centre")
    result = client_for(soft).isolate(photo.pixels, resolution="1K")
    for url in ("https://example.com/shoe.jpg", ImageURL("https://example.com/shoe.jpg")):
        with pytest.raises(InputRejected, match="URL"):
            place_on_input(url, result)
    with pytest.raises(InputRejected, match="IsolationResult"):
        place_on_input(photo.pixels, "result.png")
    with pytest.raises(InputRejected, match="file not found"):
        place_on_input(Path("missing.png"), result)


def test_unplaced_is_a_later_flag_and_never_stored_with_a_result():
    assert "unplaced" in qa.ALL_FLAGS and "unplaced" not in qa.FLAGS
    assert qa.stored({"qa": {"judge": qa.JUDGE, "flags": ["unplaced"]}}) is None, "judged again, never trusted"
    assert qa.flagged_line({"unplaced": ["a.jpg"]}, 1) == "1 flagged: 1 unplaced (a.jpg)"


def test_a_small_product_in_a_big_photo_and_a_small_photo(soft, client_for):
    """The limits of the search: a product an eighth of a 2K photo's width, and a photo of 200 px."""
    client = client_for(soft)
    for photo in (product_photo((2000, 1400), (700, 900), (125, 150), seed=3),
                  product_photo((200, 160), (90, 80), (50, 60), seed=4)):
        placement = place_on_input(photo.pixels, client.isolate(photo.pixels, resolution="1K"))
        assert_placed(placement, photo)


def test_png_bytes_are_read_as_the_upload_reads_them(soft, client_for):
    photo = case("tall photo")
    data = io.BytesIO()
    Image.fromarray(photo.pixels).save(data, format="PNG")
    result = client_for(soft).isolate(data.getvalue(), resolution="1K")
    assert photo.iou(place_on_input(data.getvalue(), result).mask) >= IOU
