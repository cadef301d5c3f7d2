"""Compliance flags on planted files: each check on both sides of its threshold, judged on real encoded
bytes (decoded again), as the renderer judges every file it writes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from runflow_api.pictures import marketplace_checks, marketplace_encode
from runflow_api.pictures.marketplace_checks import FLAGS, PlacedProduct, check
from runflow_api.pictures.marketplace_presets import Preset, parse_custom

SIDE = 400
PNG = parse_custom(f"name=lossless,{SIDE}x{SIDE},fill=0.5,bg=#f5f5f5,png,cap=100KB")  # fill 0.49-0.51
JPEG = parse_custom(f"name=lossy,{SIDE}x{SIDE},fill=0.5,bg=#f5f5f5,jpeg,cap=100KB")
GREY = (245, 245, 245)


def canvas_with_box(top: int, left: int, height: int, width: int, side: int = SIDE) -> tuple[np.ndarray, PlacedProduct]:
    """A canvas of the background with an opaque dark box, and the box as placed (its alpha)."""
    pixels = np.full((side, side, 3), GREY, np.uint8)
    pixels[top:top + height, left:left + width] = (30, 40, 150)
    return pixels, PlacedProduct(left, top, np.full((height, width), 255, np.uint8))


def encoded(pixels: np.ndarray, preset: Preset) -> bytes:
    return marketplace_encode.encode(Image.fromarray(pixels), preset.format, None).data


def centred_box(size: int = 200) -> tuple[np.ndarray, PlacedProduct]:
    start = (SIDE - size) // 2
    return canvas_with_box(start, start, size, size)


@pytest.mark.parametrize("preset", [PNG, JPEG], ids=["png", "jpeg"])
def test_a_compliant_file_has_no_flags(preset: Preset) -> None:
    pixels, product = centred_box()
    flags, measured = check(encoded(pixels, preset), preset, product)
    assert flags == []
    assert (measured.width, measured.height, measured.fill, measured.background_off) == (SIDE, SIDE, 0.5, 0)


def test_wrong_size_by_one_pixel_either_way() -> None:
    pixels, product = centred_box()
    for size in ((SIDE + 1, SIDE), (SIDE, SIDE - 1)):
        resized = Image.new("RGB", size, GREY)
        resized.paste(Image.fromarray(pixels), (0, 0))
        assert "wrong_size" in check(encoded(np.asarray(resized), PNG), PNG, product)[0]
    assert "wrong_size" not in check(encoded(pixels, PNG), PNG, product)[0]


def test_wrong_format() -> None:
    pixels, product = centred_box()
    assert check(encoded(pixels, PNG), JPEG, product)[0] == ["wrong_format"]
    assert check(encoded(pixels, JPEG), PNG, product)[0] == ["wrong_format"]
    webp = parse_custom(f"{SIDE}x{SIDE},fill=0.5,bg=#f5f5f5,webp")
    assert check(encoded(pixels, webp), webp, product)[0] == []


def test_over_cap_from_one_byte_over() -> None:
    pixels, product = centred_box()
    data = encoded(pixels, PNG)
    at_cap = parse_custom(f"{SIDE}x{SIDE},fill=0.5,bg=#f5f5f5,png,cap={len(data)}")
    below = parse_custom(f"{SIDE}x{SIDE},fill=0.5,bg=#f5f5f5,png,cap={len(data) - 1}")
    assert check(data, at_cap, product)[0] == []
    assert check(data, below, product)[0] == ["over_cap"]
    assert check(data, parse_custom(f"{SIDE}x{SIDE},fill=0.5,bg=#f5f5f5,png"), product)[0] == []  # no cap


def test_background_one_level_off_is_flagged_outside_the_product_only() -> None:
    pixels, product = centred_box()
    pixels[100, 99] = (244, 245, 245)  # one pixel left of the box (which starts at column 100)
    flags, measured = check(encoded(pixels, PNG), PNG, product)
    assert flags == ["background"] and measured.background_off == 1
    pixels, product = centred_box()
    pixels[100, 100] = (244, 245, 245)  # the box's own first pixel: product, not judged
    assert check(encoded(pixels, PNG), PNG, product)[0] == []


def test_background_at_the_border_is_judged() -> None:
    for where in ((0, 0), (SIDE - 1, SIDE - 1), (0, SIDE // 2), (SIDE // 2, SIDE - 1)):
        pixels, product = centred_box()
        pixels[where] = (255, 255, 255)
        assert check(encoded(pixels, PNG), PNG, product)[0] == ["background"], where


def test_in_a_jpeg_the_products_blocks_are_left_out_and_the_next_block_is_judged() -> None:
    """A flat block decodes exactly from our tables, so a planted flat 8x8 block of 244 stays 244: inside a
    block the product reaches it is not judged; one block further out it is."""
    block = marketplace_checks.JPEG_BLOCK
    pixels, product = canvas_with_box(104, 104, 190, 190)  # the box's last column is 293: block 36 (288-295)
    pixels[200:208, 294:296] = (244, 244, 244)  # the rest of that block, after the product: not judged
    flags, _ = check(encoded(pixels, JPEG), JPEG, product)
    assert "background" not in flags
    pixels, product = canvas_with_box(104, 104, 190, 190)
    pixels[200:208, 296:296 + block] = (244, 244, 244)  # block 37: no product in it
    flags, measured = check(encoded(pixels, JPEG), JPEG, product)
    assert "background" in flags and measured.background_off == block * block


def test_fill_at_both_ends_of_its_range() -> None:
    # fill 0.49-0.51 of 400 px: a box 196..204 px long on its limiting side passes
    for size, flagged in ((195, True), (196, False), (204, False), (205, True)):
        start = (SIDE - size) // 2
        pixels, product = canvas_with_box(start, start, size, 100)  # limited by its height
        flags, measured = check(encoded(pixels, PNG), PNG, product)
        assert ("fill" in flags) is flagged, (size, measured.fill)


def test_fill_is_the_limiting_side() -> None:
    pixels, product = canvas_with_box(100, 20, 100, 200)  # 200 wide, 100 high: the width limits
    assert check(encoded(pixels, PNG), PNG, product)[1].fill == 0.5


def test_cut_off_at_the_edge_and_not_one_pixel_in() -> None:
    for top, left, flagged in ((0, 100, True), (1, 100, False), (100, SIDE - 200, True), (100, SIDE - 201, False)):
        pixels, product = canvas_with_box(top, left, 200, 200)
        assert ("cut_off" in check(encoded(pixels, PNG), PNG, product)[0]) is flagged, (top, left)


def test_cut_off_and_enlarged_carried_from_the_rendering() -> None:
    pixels, product = centred_box()
    data = encoded(pixels, PNG)
    assert check(data, PNG, product, cut_at_source=True)[0] == ["cut_off"]
    assert check(data, PNG, product, enlarged=True)[0] == ["enlarged"]
    assert check(data, PNG, product, enlarged=False, cut_at_source=False)[0] == []


def test_a_canvas_wide_mask_places_the_product_like_its_box() -> None:
    pixels, product = centred_box()
    mask = np.zeros((SIDE, SIDE), np.float32)
    mask[100:300, 100:300] = 1.0
    from_mask = PlacedProduct.from_canvas_mask(mask)
    assert check(encoded(pixels, JPEG), JPEG, from_mask) == check(encoded(pixels, JPEG), JPEG, product)


def test_flags_come_in_the_declared_order() -> None:
    pixels, product = canvas_with_box(0, 0, 300, 300)
    pixels[SIDE - 1, SIDE - 1] = (0, 0, 0)
    data = io.BytesIO()
    Image.fromarray(pixels).save(data, "PNG")
    flags, _ = check(data.getvalue(), JPEG, product, enlarged=True)
    assert flags == [name for name in FLAGS if name in {"wrong_format", "background", "fill", "cut_off", "enlarged"}]
    assert flags == ["wrong_format", "background", "fill", "cut_off", "enlarged"]
