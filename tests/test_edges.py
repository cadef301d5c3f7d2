"""edges.decontaminate on synthetic cut-outs whose true colours are known (tests/edge_truth.py): the
quality the issue asks for, with a margin, and what it must never touch (alpha, opaque and empty pixels,
shapes, dtypes), down to 1x1 and up to 4K. benchmarks/edges.py prints the same figures."""

from __future__ import annotations

import numpy as np
import pytest
from edge_truth import EdgeCase, composite_error, make_case, quality
from PIL import Image

from runflow_api import InputRejected
from runflow_api.pictures.edges import EDGE_MODES, check_edges, clean_image, decontaminate


@pytest.fixture(scope="module")
def cases() -> list[EdgeCase]:
    return [make_case(384, seed) for seed in range(3)]  # one per studio background colour


def test_composites_on_new_backgrounds_are_at_least_twice_as_close_to_the_truth(cases: list[EdgeCase]) -> None:
    """The issue's target is a ratio of at most 1/2 (aim 1/3); measured ~0.16-0.26 on these cases."""
    ratios = [quality(decontaminate, case)[0] for case in cases]
    assert max(ratios) < 0.4, ratios
    assert float(np.mean(ratios)) < 1 / 3, ratios


def test_an_already_clean_cut_out_gets_worse_by_less_than_one_percent(cases: list[EdgeCase]) -> None:
    """Measured ~0.48 % of the range; the issue allows 1 %."""
    for case in cases:
        _, worse = quality(decontaminate, case)
        assert worse < 0.8, worse


def test_the_band_really_was_contaminated(cases: list[EdgeCase]) -> None:
    """The cases are hard enough for the ratio to mean something: the returned edges are far off."""
    for case in cases:
        assert composite_error(case.observed, case) > 5  # of 255, mean over the band
        assert case.band.sum() > 2000


def test_only_partly_transparent_pixels_change_and_alpha_never(cases: list[EdgeCase]) -> None:
    case = cases[0]
    out = decontaminate(case.observed)
    assert out.shape == case.observed.shape and out.dtype == np.uint8
    assert np.array_equal(out[..., 3], case.observed[..., 3])
    assert np.array_equal(out[~case.band], case.observed[~case.band]), "opaque and empty pixels unchanged"
    changed = (out[..., :3] != case.observed[..., :3]).any(axis=2)
    assert changed[case.band].mean() > 0.5, "most edge pixels get a new colour"
    assert out is not case.observed and out.flags["C_CONTIGUOUS"]


def test_the_input_is_not_modified(cases: list[EdgeCase]) -> None:
    before = cases[1].observed.copy()
    decontaminate(cases[1].observed)
    assert np.array_equal(cases[1].observed, before)


@pytest.mark.parametrize("alpha", [0, 255])
def test_an_image_without_edges_comes_back_equal(alpha: int) -> None:
    rgba = np.random.default_rng(1).integers(0, 256, (70, 90, 4), dtype=np.uint8)
    rgba[..., 3] = alpha
    out = decontaminate(rgba)
    assert np.array_equal(out, rgba) and out is not rgba


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (9, 1), (17, 33), (37, 53)])
def test_tiny_and_odd_sizes(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(len(shape) + shape[0])
    rgba = rng.integers(0, 256, (*shape, 4), dtype=np.uint8)
    out = decontaminate(rgba)
    assert out.shape == rgba.shape and out.dtype == np.uint8
    assert np.array_equal(out[..., 3], rgba[..., 3])
    solid = (rgba[..., 3] == 0) | (rgba[..., 3] == 255)
    assert np.array_equal(out[solid], rgba[solid])


def test_a_single_half_transparent_pixel_keeps_its_colour_when_nothing_else_is_known() -> None:
    """With no product or background around it, the observed colour is the best estimate of both."""
    rgba = np.array([[[200, 40, 90, 128]]], np.uint8)
    assert np.array_equal(decontaminate(rgba), rgba)


def test_one_colour_everywhere_stays_that_colour_whatever_the_alpha() -> None:
    """Product and background of the same colour: every estimate must be that colour, including soft
    specks too small and too far from anything for the large pass to have sampled them."""
    rgba = np.zeros((300, 300, 4), np.uint8)
    rgba[..., :3] = (200, 40, 90)
    rgba[150:152, 151:153, 3] = 128  # a lone speck, off the large pass' sampling grid
    rgba[10:60, 200:260, 3] = np.random.default_rng(3).integers(0, 256, (50, 60), dtype=np.uint8)
    assert np.array_equal(decontaminate(rgba), rgba)


def test_a_uniform_soft_edge_of_one_colour_gets_that_colour() -> None:
    """A red product fading into a green screen: the edge must come out red, not brownish."""
    width = 200
    ramp = np.clip((np.arange(width) - 80) / 40, 0, 1)  # opaque left, empty right, 40 px soft
    alpha = np.round((1 - ramp) * 255).astype(np.uint8)
    a = alpha / 255.0
    red, green = np.array([220, 30, 30]), np.array([20, 210, 40])
    row = np.round(a[:, None] * red + (1 - a[:, None]) * green).astype(np.uint8)
    rgba = np.dstack([np.broadcast_to(row, (60, width, 3)), np.broadcast_to(alpha, (60, width))])
    out = decontaminate(np.ascontiguousarray(rgba))
    band = (alpha > 0) & (alpha < 255)
    assert np.abs(out[30, band, :3].astype(int) - red).max() <= 24  # measured 16, at the faintest end
    assert np.abs(rgba[30, band, :3].astype(int) - red).max() > 150, "as returned, the edge was mostly green"


def test_4k() -> None:
    """A 4096x4096 cut-out, mostly empty, holding the 512 px case four times, one in a corner (edges
    against the image's border): same shape, alpha and solid pixels, and the same quality as alone."""
    small = make_case(512, 2)
    big = np.zeros((4096, 4096, 4), np.uint8)
    places = [(0, 0), (1800, 1700), (3584, 3584), (0, 3584)]
    for top, left in places:
        big[top:top + 512, left:left + 512] = small.observed
    out = decontaminate(big)
    assert out.shape == (4096, 4096, 4) and out.dtype == np.uint8
    assert np.array_equal(out[..., 3], big[..., 3])
    band = (big[..., 3] > 0) & (big[..., 3] < 255)
    assert np.array_equal(out[~band], big[~band])
    for top, left in places:
        copy = out[top:top + 512, left:left + 512]
        assert composite_error(copy, small) < 0.4 * composite_error(small.observed, small), (top, left)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (np.zeros((4, 4, 3), np.uint8), "shape (4, 4, 3)"),
        (np.zeros((4, 4, 4), np.float32), "float32"),
        (np.zeros((4, 4), np.uint8), "HxWx4"),
        ([[0, 0, 0, 0]], "got a list"),
    ],
)
def test_bad_input_is_refused_with_what_to_do(value: object, needle: str) -> None:
    with pytest.raises(InputRejected) as caught:
        decontaminate(value)  # type: ignore[arg-type]
    assert needle in str(caught.value) and "convert('RGBA')" in str(caught.value)


def test_edges_values() -> None:
    assert [check_edges(mode) for mode in EDGE_MODES] == ["as returned", "clean"]
    with pytest.raises(InputRejected, match="edges must be one of 'as returned', 'clean', got 'Clean'"):
        check_edges("Clean")


def test_clean_image_leaves_an_image_without_alpha_alone() -> None:
    rgb = Image.new("RGB", (8, 8), (10, 20, 30))
    assert clean_image(rgb) is rgb
    rgba = Image.fromarray(make_case(64, 0).observed)
    cleaned = clean_image(rgba)
    assert cleaned.mode == "RGBA" and cleaned.size == rgba.size
    assert np.array_equal(np.asarray(cleaned), decontaminate(np.asarray(rgba)))


def test_a_row_of_tiles_cleaned_as_one_strip_gives_what_its_tiles_give(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide soft band is cleaned a row of tiles at a time (one strip): the same colours as tile by tile,
    within one level of rounding (the strip sums in float64, a tile in float32)."""
    from runflow_api.pictures import edges

    case = make_case(384, 1)
    windows: list[tuple[int, int]] = []
    clean = edges._clean_windows
    monkeypatch.setattr(edges, "_clean_windows", lambda *args: windows.append(args[4]) or clean(*args))
    strips = decontaminate(case.observed)
    assert sum(width > edges.TILE for _, width in windows) > 3, "the case has rows dense enough to be strips"
    monkeypatch.setattr(edges, "_STRIP_SHARE", float("inf"))  # never a strip: every edge tile on its own
    tiles = decontaminate(case.observed)
    assert np.abs(strips.astype(int) - tiles.astype(int)).max() <= 1
    assert np.count_nonzero(strips != tiles) < 0.001 * strips.size, "rounding, not a different method"
    assert composite_error(strips, case) <= composite_error(tiles, case) * 1.001
