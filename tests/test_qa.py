"""QA flags on planted mattes: each flag's clear case, both sides of its threshold, and the two ways of
counting parts (scipy and the numpy fallback) agreeing."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from PIL import Image

from runflow_api.pictures import qa
from runflow_api.pictures.result_types import IsolationResult

LIMITS = qa.DEFAULT_THRESHOLDS
SIDE = 200  # below the sampling grid: every pixel is judged, so the edges below are exact


def canvas(side: int = SIDE) -> np.ndarray:
    return np.zeros((side, side), dtype=np.float32)


def product(side: int = SIDE) -> np.ndarray:
    """A clean cut-out: an opaque box at about 80% of the canvas, centred, with a soft 2 px edge."""
    matte = canvas(side)
    low, high = side // 10, side - side // 10
    matte[low - 2 : high + 2, low - 2 : high + 2] = 0.5
    matte[low:high, low:high] = 1.0
    return matte


def test_a_clean_cut_out_has_no_flags() -> None:
    assert qa.flags(product()) == []
    assert qa.flags((product(2048) * 255).astype(np.uint8)) == [], "uint8 and large canvases too"


def test_empty_below_its_share_of_the_canvas() -> None:
    assert qa.flags(canvas()) == ["empty"]
    limit = LIMITS.empty_below * SIDE * SIDE  # 80 pixels
    speck = canvas()
    speck[100, 100 : 100 + int(limit) - 1] = 1.0
    assert qa.flags(speck) == ["empty"], "a speck under the limit: nothing was isolated"
    speck[101, 100 : 100 + 10] = 1.0
    assert "empty" not in qa.flags(speck), "just over the limit: something is there (a tiny thing)"
    faint = canvas() + LIMITS.clear_background  # a haze at the background level shows nothing
    assert qa.flags(faint) == ["empty"]


def test_full_when_the_matte_covers_the_canvas_and_then_not_cut_off() -> None:
    assert qa.flags(np.ones((SIDE, SIDE), np.float32)) == ["full"]
    nearly = np.ones((SIDE, SIDE), np.float32)
    nearly[:, : int(SIDE * (1 - LIMITS.full_above)) + 1] = 0  # 94.5% covered
    assert qa.flags(nearly) == ["cut_off"], "under the limit it is a product running into three borders"
    nearly[:, : int(SIDE * (1 - LIMITS.full_above)) - 1] = 1  # 95.5% covered
    assert qa.flags(nearly) == ["full"]


def test_cut_off_when_the_product_runs_into_a_border() -> None:
    side = 1000
    matte = product(side)
    matte[500:, 300:700] = 1.0  # runs off the bottom over 40% of its width
    assert qa.flags(matte) == ["cut_off"]
    touch = product(side)
    width = int(LIMITS.cut_off_above * side)  # 10 px of a 1000 px border line: not over 1%
    touch[500:, 500 : 500 + width] = 1.0
    assert qa.flags(touch) == []
    touch[500:, 500 : 500 + width + 2] = 1.0
    assert qa.flags(touch) == ["cut_off"]
    for flipped in (touch[::-1], touch.T, touch.T[:, ::-1]):
        assert qa.flags(np.ascontiguousarray(flipped)) == ["cut_off"], "every border is watched"


def parts(count: int, small_last: float | None = None) -> np.ndarray:
    """`count` separate squares of 30 px; the last one scaled to `small_last` of the others' side."""
    matte = canvas()
    for index in range(count):
        side = 30 if small_last is None or index < count - 1 else max(1, round(30 * small_last))
        row, col = 20 + (index // 3) * 60, 20 + (index % 3) * 60
        matte[row : row + side, col : col + side] = 1.0
    return matte


def test_fragments_from_three_sizeable_parts() -> None:
    assert qa.flags(parts(6)) == ["fragments"]
    assert qa.flags(parts(3)) == ["fragments"]
    assert qa.flags(parts(2)) == [], "a pair (shoes, earrings) is one product"
    # The third part's share of the product's area just under and over `fragment_share` (5%).
    assert qa.flags(parts(3, small_last=0.31)) == []  # 0.31^2 / (2 + 0.31^2) = 4.6%
    assert qa.flags(parts(3, small_last=0.34)) == ["fragments"]  # 5.5%


def test_a_part_joined_by_a_thin_bridge_is_one_part() -> None:
    matte = parts(3)
    matte[35, 20:170] = 1.0  # one pixel wide, 4-connected to all three
    assert qa.flags(matte) == []


def test_tiny_when_the_product_spans_little_of_the_canvas() -> None:
    side = int(LIMITS.tiny_below * SIDE)  # 50 px of 200: not under 25%
    matte = canvas()
    matte[80 : 80 + side - 1, 80 : 80 + side - 1] = 1.0
    assert qa.flags(matte) == ["tiny"]
    matte[80 : 80 + side + 1, 80 : 80 + side + 1] = 1.0
    assert qa.flags(matte) == []
    long_thin = canvas()
    long_thin[100:104, 20:180] = 1.0  # a pen: small area, long
    assert qa.flags(long_thin) == []


def test_soft_when_most_of_the_matte_is_unsure() -> None:
    assert qa.flags(product() * 0.6) == ["soft"], "a half-transparent cut-out all over"
    matte = canvas()
    matte[50:150, 50:150] = 1.0  # 10,000 visible pixels, all clearly product
    matte[50:100, 50:150] = 0.5  # exactly half unsure (LIMITS.soft_above): not over the limit
    assert qa.flags(matte) == []
    matte[100, 50] = 0.5  # one pixel more
    assert qa.flags(matte) == ["soft"]


def test_several_flags_come_in_one_order() -> None:
    matte = parts(4) * 0.6
    matte[170:, 20:50] = 0.6  # the fourth part runs off the bottom
    assert qa.flags(matte) == ["cut_off", "fragments", "soft"]


def test_inputs_are_read_safely_and_bad_shapes_refused() -> None:
    matte = product()
    assert qa.flags((matte * 255).round().astype(np.uint8)) == qa.flags(matte)
    noisy = matte.copy()
    noisy[0, 0] = np.nan
    noisy[1, 1] = 7.0  # out of range: clipped
    assert qa.flags(noisy) == []
    with pytest.raises(ValueError, match="HxW"):
        qa.flags(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="HxW"):
        qa.flags(np.zeros((0, 5)))


@pytest.mark.parametrize("seed", range(5))
def test_scipy_and_the_numpy_fallback_count_the_same_parts(seed: int) -> None:
    pytest.importorskip("scipy", reason="scipy (the test extra) is what the fallback is compared with")
    rng = np.random.default_rng(seed)
    mask = rng.random((97, 131)) > 0.45 + seed * 0.05
    assert sorted(qa.part_areas(mask).tolist()) == sorted(qa.run_part_areas(mask).tolist())


def test_the_fallback_joins_shapes_that_meet_only_lower_down() -> None:
    u_shape = np.zeros((5, 7), dtype=bool)
    u_shape[:, 0] = u_shape[:, 6] = u_shape[4, :] = True  # two arms, one part
    u_shape[0, 3] = True  # a separate dot between the arms
    assert sorted(qa.run_part_areas(u_shape).tolist()) == [1, 15]
    assert qa.run_part_areas(np.zeros((3, 3), dtype=bool)).size == 0


def result_with(image: Image.Image) -> IsolationResult:
    return IsolationResult(image=image, run_id="r", cost=Decimal("0.27"), output_url=None, cached=False,
                           aspect_ratio="1:1", resolution="1K", cache_key="k")


def test_a_result_carries_the_flags_of_its_matte() -> None:
    rgba = Image.new("RGBA", (SIDE, SIDE), (200, 30, 30, 0))
    assert result_with(rgba).flags == ["empty"]
    rgba.putalpha(Image.fromarray((product() * 255).astype(np.uint8)))
    assert result_with(rgba).flags == []
    assert result_with(Image.new("RGB", (SIDE, SIDE))).flags == [], "no alpha: no matte to judge"


def test_the_end_of_run_line_names_counts_and_the_first_files() -> None:
    flagged = {"cut_off": ["c.jpg"], "empty": ["a.jpg", "b.jpg"]}
    assert qa.flagged_line(flagged, 3) == "3 flagged: 2 empty (a.jpg, b.jpg), 1 cut_off (c.jpg)"
    many = {"tiny": [f"{n}.jpg" for n in range(5)]}
    assert qa.flagged_line(many, 5) == "5 flagged: 5 tiny (0.jpg, 1.jpg, 2.jpg, ...)"
    assert qa.flagged_line({}, 0) == ""


@pytest.mark.parametrize("size", [(1000, 700), (2048, 1365), (517, 2000), (4096, 4096)])
def test_a_result_image_is_judged_on_the_same_pixels_as_its_matte(size: tuple[int, int]) -> None:
    """`image_flags` lets Pillow sample the grid (no full copy of a 4K matte); the pixels it reads are
    the ones `flags` reads, so a result and its matte as an array always get the same flags."""
    width, height = size
    rng = np.random.default_rng(width)
    matte = (rng.random((height, width)) * 255).astype(np.uint8)
    rows, cols = qa._grid_size(width, height, LIMITS)
    by_pillow = np.asarray(Image.fromarray(matte).resize((cols, rows), Image.Resampling.NEAREST))
    assert np.array_equal(by_pillow, matte[np.ix_(qa._centres(height, rows), qa._centres(width, cols))])
    rgba = Image.new("RGBA", size)
    rgba.putalpha(Image.fromarray(matte))
    assert qa.image_flags(rgba) == qa.flags(matte)
