"""Shadows drawn from the matte (runflow_api.pictures.shadows): on real arrays, and on the emulator's real cut-out
of the bundled sneaker photo. A contact shadow darkens the rows just below the product and nothing above
it; a drop shadow falls down and to the right; the product's opaque pixels never change; a transparent
output carries the shadow as dark, partly transparent pixels; the shadow stays in the canvas; bad values
are refused with messages that name the input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runflow_api import InputRejected
from runflow_api.pictures.backgrounds import composite
from runflow_api.pictures.shadows import (
    SHADOW_CONTACT,
    SHADOW_DROP,
    Placement,
    ShadowOptions,
    add_shadow,
    framed_box,
    place_framed,
    product_box,
    render_shadow,
    shadow_box,
    shadow_image,
)

SNEAKER = Path(__file__).resolve().parents[1] / "examples" / "sneaker.jpg"
WHITE = (255, 255, 255)
TERRACOTTA = (200, 110, 70)


def cut_out(canvas: tuple[int, int] = (400, 300), box: tuple[int, int, int, int] = (120, 60, 280, 200),
            scale: int = 1) -> np.ndarray:
    """An RGBA cut-out: a coloured block with a gradient, opaque inside and a 1 px soft rim, on transparency.
    `scale` draws the same scene that many times larger."""
    width, height = canvas[0] * scale, canvas[1] * scale
    left, top, right, bottom = (side * scale for side in box)
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[..., :3] = (10, 200, 30)  # colour under alpha 0: must not leak anywhere the shadow does not reach
    ramp = np.linspace(40, 220, right - left, dtype=np.float32).astype(np.uint8)
    rgba[top:bottom, left:right, 0] = ramp
    rgba[top:bottom, left:right, 1] = 90
    rgba[top:bottom, left:right, 2] = 160
    rgba[top:bottom, left:right, 3] = 255
    rgba[top:bottom, left - 1, 3] = rgba[top:bottom, right, 3] = 128  # a soft rim on both sides
    rgba[top:bottom, left - 1, :3] = rgba[top:bottom, right, :3] = (60, 90, 160)
    return rgba


def on(rgba: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return composite(rgba[..., :3], rgba[..., 3] / np.float32(255), colour)


def opaque(rgba: np.ndarray) -> np.ndarray:
    return rgba[..., 3] == 255


# -- contact -----------------------------------------------------------------------------------------------


def test_contact_on_white_darkens_just_below_the_product_and_leaves_everything_above_white() -> None:
    rgba = cut_out()
    shaded = on(add_shadow(rgba, ShadowOptions(SHADOW_CONTACT)), WHITE)
    below = shaded[200:204, 130:270].astype(int)  # the product's base is row 199
    assert below.mean() < 235, "the rows just below the product are darker than the background"
    assert (shaded[:60] == 255).all(), "every row above the product stays exactly white"
    assert (shaded[60:200, :100] == 255).all() and (shaded[60:190, 300:] == 255).all(), "beside its top too"
    assert np.array_equal(shaded[opaque(rgba)], on(rgba, WHITE)[opaque(rgba)]), "the product's pixels unchanged"
    assert (shaded[200] <= shaded[215]).all() and shaded[200].mean() < shaded[215].mean(), "darkest at the base"


def test_contact_in_a_transparent_output_is_dark_and_partly_transparent() -> None:
    rgba = cut_out()
    out = add_shadow(rgba, ShadowOptions(SHADOW_CONTACT, strength=0.6))
    below = out[200:204, 130:270]
    assert (below[..., 3] > 0).all() and (below[..., 3] < 255).all(), "semi-transparent"
    assert (below[..., :3] == 0).all(), "black: it darkens whatever is composited under it later"
    assert below[..., 3].max() <= round(0.6 * 255), "never darker than the strength"
    assert np.array_equal(out[opaque(rgba)], rgba[opaque(rgba)]), "opaque product pixels bit-exact"


def test_on_a_colour_the_shadow_darkens_that_colour_and_the_rest_of_it_stays_exact() -> None:
    rgba = cut_out()
    out = add_shadow(rgba, ShadowOptions(SHADOW_CONTACT))
    shaded, plain = on(out, TERRACOTTA), on(rgba, TERRACOTTA)
    reached = out[..., 3] != rgba[..., 3]
    assert reached.sum() > 1000
    assert np.array_equal(shaded[~reached], plain[~reached]), "the colour is exact wherever the shadow is not"
    darker = shaded[reached & (rgba[..., 3] == 0)].astype(float)
    assert (darker <= TERRACOTTA).all() and (darker.sum(axis=1) < sum(TERRACOTTA)).all()
    ratios = darker[darker[:, 0] > 60] / TERRACOTTA  # a darker shade of the same colour, not a grey
    assert np.ptp(ratios, axis=1).max() < 0.03


def test_a_soft_product_edge_is_composited_over_its_shadow() -> None:
    """Where the product is partly transparent, product over shadow over colour: c = a F + (1 - a)(1 - s) B."""
    rgba = cut_out()
    out = add_shadow(rgba, ShadowOptions(SHADOW_CONTACT, strength=1.0, softness=1.0))
    rim = (rgba[..., 3] == 128) & (out[..., 3] > 128)
    assert rim.sum() > 3, "the shadow reaches under the soft rim near the base"
    drawn = render_shadow(rgba[..., 3], ShadowOptions(SHADOW_CONTACT, strength=1.0, softness=1.0))
    assert drawn is not None
    (left, top, right, bottom), shade = drawn
    full = np.zeros(rgba.shape[:2], np.float64)
    full[top:bottom, left:right] = shade / 255
    a = 128 / 255
    expected = a * rgba[rim][:, :3] + (1 - a) * (1 - full[rim])[:, None] * np.array(TERRACOTTA)
    assert np.abs(on(out, TERRACOTTA)[rim] - expected).max() <= 1.5


# -- drop --------------------------------------------------------------------------------------------------


def test_drop_falls_down_and_to_the_right() -> None:
    rgba = cut_out()
    options = ShadowOptions(SHADOW_DROP, softness=0.2)
    drawn = render_shadow(rgba[..., 3], options)
    assert drawn is not None
    (left, top, _, _), shade = drawn
    rows, cols = np.indices(shade.shape)
    centre_y, centre_x = np.average(rows + top, weights=shade), np.average(cols + left, weights=shade)
    assert centre_x - (120 + 280) / 2 > 2 and centre_y - (60 + 200) / 2 > 2, "the silhouette moved right and down"
    out = add_shadow(rgba, options)
    assert out[205, 200, 3] > 30 and out[130, 285, 3] > 30, "below the product and right of it"
    assert (out[:55, :, 3] == 0).all() and (out[:, :110, 3] == 0).all(), "nothing above or left of it"


def test_drop_keeps_the_product_pixels_and_stays_below_the_strength() -> None:
    rgba = cut_out()
    out = add_shadow(rgba, ShadowOptions(SHADOW_DROP, strength=0.3))
    assert np.array_equal(out[opaque(rgba)], rgba[opaque(rgba)])
    assert out[..., 3][rgba[..., 3] == 0].max() <= round(0.3 * 255)


# -- what changes nothing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [ShadowOptions(), ShadowOptions(SHADOW_CONTACT, strength=0),
                                     ShadowOptions(SHADOW_DROP, strength=0)])
def test_none_and_strength_zero_change_nothing(options: ShadowOptions) -> None:
    rgba = cut_out()
    assert add_shadow(rgba, options) is rgba
    assert render_shadow(rgba[..., 3], options) is None and shadow_box(rgba[..., 3], options) is None


def test_an_empty_matte_or_an_image_without_alpha_casts_nothing() -> None:
    empty = np.zeros((50, 60, 4), np.uint8)
    assert add_shadow(empty, ShadowOptions(SHADOW_DROP)) is empty
    photo = Image.new("RGB", (60, 50), (200, 200, 200))
    assert shadow_image(photo, ShadowOptions(SHADOW_CONTACT)) is photo


def test_shadow_image_returns_a_new_rgba_image_with_the_shadow() -> None:
    image = Image.fromarray(cut_out())
    shaded = shadow_image(image, ShadowOptions(SHADOW_CONTACT))
    assert shaded.mode == "RGBA" and shaded.size == image.size
    assert np.array_equal(np.asarray(shaded), add_shadow(cut_out(), ShadowOptions(SHADOW_CONTACT)))


# -- the canvas and framing --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [SHADOW_CONTACT, SHADOW_DROP])
def test_a_product_touching_the_bottom_edge_keeps_a_visible_shadow_inside_the_canvas(mode: str) -> None:
    rgba = cut_out(box=(120, 120, 280, 300))
    drawn = render_shadow(rgba[..., 3], ShadowOptions(mode))
    assert drawn is not None
    (left, top, right, bottom), shade = drawn
    assert 0 <= left < right <= 400 and 0 <= top < bottom <= 300 and shade.shape == (bottom - top, right - left)
    out = add_shadow(rgba, ShadowOptions(mode))
    visible = (rgba[..., 3] == 0) & (out[..., 3] > 0)
    assert visible.sum() > 50, "the shadow shows beside the product although there is no room below it"
    if mode == SHADOW_DROP:
        assert visible[:, 281:].sum() > visible[:, :119].sum(), "still cast to the right"


@pytest.mark.parametrize("mode", [SHADOW_CONTACT, SHADOW_DROP])
@pytest.mark.parametrize("softness", [0.0, 1.0])
@pytest.mark.parametrize("where", ["one pixel", "whole canvas", "bottom right corner", "a single pixel image"])
def test_degenerate_products_draw_inside_the_canvas_and_keep_their_pixels(
    mode: str, softness: float, where: str,
) -> None:
    rgba = np.zeros((1, 1, 4) if where == "a single pixel image" else (40, 50, 4), np.uint8)
    if where == "one pixel":
        rgba[5, 7] = 255
    elif where == "bottom right corner":
        rgba[10:, 20:] = 255
    else:
        rgba[...] = 255
    out = add_shadow(rgba, ShadowOptions(mode, strength=1.0, softness=softness))
    assert out.shape == rgba.shape and np.array_equal(out[opaque(rgba)], rgba[opaque(rgba)])
    if where == "one pixel":
        assert (out[..., 3] > 0).sum() > 1, "even a speck casts a shadow"


@pytest.mark.parametrize("mode", [SHADOW_CONTACT, SHADOW_DROP])
def test_the_drawn_shadow_lies_inside_shadow_box_and_the_box_scales_with_the_product(mode: str) -> None:
    options = ShadowOptions(mode, softness=0.7)
    rgba = cut_out()
    predicted = shadow_box(rgba[..., 3], options)
    assert predicted is not None
    rows, cols = np.nonzero(add_shadow(rgba, options)[..., 3] != rgba[..., 3])
    assert predicted[0] <= cols.min() and cols.max() < predicted[2]
    assert predicted[1] <= rows.min() and rows.max() < predicted[3]
    twice = shadow_box(cut_out(scale=2)[..., 3], options)
    assert twice is not None
    for side, doubled in zip(predicted, twice, strict=True):
        assert abs(doubled - 2 * side) <= 8, "every length is relative to the product's size"


def test_framed_box_centres_product_and_shadow_together_without_moving_the_product_more_than_its_shadow() -> None:
    rgba = cut_out()
    product = product_box(rgba[..., 3])
    assert product == (119, 60, 281, 200)
    for mode in (SHADOW_CONTACT, SHADOW_DROP):
        shadow = shadow_box(rgba[..., 3], ShadowOptions(mode))
        assert shadow is not None
        framed = framed_box(product, shadow)
        assert framed == (min(product[0], shadow[0]), min(product[1], shadow[1]),
                          max(product[2], shadow[2]), max(product[3], shadow[3]))
        for low, high in ((0, 2), (1, 3)):  # how far centring `framed` moves the product from the centre
            off_centre = abs((framed[low] + framed[high]) / 2 - (product[low] + product[high]) / 2)
            beyond = max(product[low] - shadow[low], shadow[high] - product[high], 0)
            assert off_centre <= beyond
    assert framed_box(product, None) == product


def test_place_framed_keeps_the_products_scale_and_shrinks_only_when_product_and_shadow_do_not_fit() -> None:
    product, shadow = (100, 100, 300, 200), (90, 180, 320, 230)  # a shadow below and a little to the right
    roomy = place_framed(product, shadow, (1000, 1000), 2.0)
    assert roomy.scale == 2.0, "the fill is measured on the product"
    # The framed box (90..320 x 100..230) is centred: 460 x 260 at x 270, y 370.
    assert roomy == Placement(2.0, 270 + 10 * 2, 370)
    centre_x, centre_y = roomy.left + 200 * 2 / 2, roomy.top + 100 * 2 / 2
    assert abs(centre_x - 500) <= (320 - 300) * 2 and abs(centre_y - 500) <= (230 - 200) * 2
    tight = place_framed(product, shadow, (460, 600), 4.0)
    assert tight.scale == 2.0 and tight.left == 20, "shrunk until the shadow fits the width, never cut"
    assert place_framed(product, None, (400, 200), 1.0) == Placement(1.0, 100, 50)


# -- bad values --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "named"), [
    ({"mode": "soft"}, "shadow must be one of 'none', 'contact', 'drop'"),
    ({"mode": SHADOW_DROP, "strength": 1.5}, "shadow_strength must be from 0 to 1, got 1.5"),
    ({"mode": SHADOW_DROP, "strength": -0.1}, "shadow_strength must be from 0 to 1"),
    ({"mode": SHADOW_DROP, "strength": math.nan}, "shadow_strength must be from 0 to 1"),
    ({"mode": SHADOW_DROP, "strength": "0.5"}, "shadow_strength must be a number from 0 to 1, got str"),
    ({"mode": SHADOW_DROP, "strength": True}, "shadow_strength must be a number"),
    ({"mode": SHADOW_CONTACT, "softness": 2}, "shadow_softness must be from 0 to 1, got 2"),
    ({"mode": SHADOW_CONTACT, "softness": None}, "shadow_softness must be a number"),
])
def test_bad_values_are_refused_with_a_message_naming_the_input(options: dict, named: str) -> None:
    with pytest.raises(InputRejected, match="^" + named.replace("(", r"\(").replace(".", r"\.")):
        ShadowOptions(**options)


def test_add_shadow_refuses_an_array_that_is_not_rgba() -> None:
    with pytest.raises(InputRejected, match="add_shadow needs an HxWx4 uint8 array"):
        add_shadow(np.zeros((10, 10, 3), np.uint8), ShadowOptions(SHADOW_DROP))


# -- the emulator's real cut-out ---------------------------------------------------------------------------


def test_on_the_emulators_cut_out_of_the_sample_photo(emulator_factory, client_for) -> None:
    """The issue's checks on the bundled sneaker as the emulator isolates it (a real matte, soft edges)."""
    emulator = emulator_factory(cheap=False)
    result = client_for(emulator).isolate(SNEAKER, resolution="1K")
    rgba = np.asarray(result.image)
    assert rgba.shape[2] == 4
    left, top, right, bottom = product_box(rgba[..., 3])
    middle = slice(left + (right - left) // 4, right - (right - left) // 4)
    on_white = on(add_shadow(rgba, ShadowOptions(SHADOW_CONTACT)), WHITE)
    assert on_white[bottom:bottom + 3, middle].mean() < 240, "darker just below the product"
    assert (on_white[:top] == 255).all(), "exactly white above it"
    assert np.array_equal(on_white[opaque(rgba)], on(rgba, WHITE)[opaque(rgba)])
    transparent = add_shadow(rgba, ShadowOptions(SHADOW_CONTACT))[bottom:bottom + 3, middle]
    assert (transparent[..., 3] > 0).all() and (transparent[..., 3] < 255).all()
    assert (transparent[..., :3] < 40).all(), "dark"
    assert emulator.stats["creates"] == 1
