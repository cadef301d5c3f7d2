"""Rendering options (`PostProcessing`) are declared once and never cost money; isolation options
(`IsolationParams`) are each applied by something. These guards read both declarations, so a new option
is covered the day it is declared:

- every rendering option away from its default leaves the cache key, the create body and the
  Idempotency-Key as they are, with exactly one create (the golden values of tests/test_money_golden.py);
- a rendering option that would move the cache key fails, naming it;
- an isolation option that is neither sent nor changes the upload fails: nothing would apply it (the
  trap of declaring a local option in `IsolationParams`: every value a new paid run, none applied).

And `margin`, the proof that a new rendering option is cheap: the product shrinks, centred, the canvas
keeps its size, in the library and the nodes (real tensors), from the cache.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from golden_support import (
    COST_OF_A_BODY_CHANGE,
    COST_OF_A_KEY_CHANGE,
    COST_OF_AN_IDEMPOTENCY_CHANGE,
    GOLDEN,
    RecordingService,
    create_sent,
    golden_body,
    golden_photo,
)
from node_support import PACK, bound_to, run_node
from support import alpha_bounds, product_photo

from runflow_api import InputRejected, RunflowClient
from runflow_api.pictures.margins import apply_margin
from runflow_api.pictures.post_processing import PostProcessing, rendering_fields, rendering_names
from runflow_api.product_isolation import option_fields, option_names

# Options whose declaration says no other valid value by itself (no choices, no range): one here each.
OTHER_VALUES: dict[str, Any] = {"background": "#ffffff", "prompt": "the left shoe"}


def other_value(item: dataclasses.Field[Any], choices: tuple[str, ...], maximum: float | None = None) -> Any:
    """A valid value of an option that is not its default, read from its declaration where it can be."""
    if isinstance(item.default, bool):
        return not item.default
    if choices:
        return next(choice for choice in choices if choice != item.default)
    if maximum is not None:
        return maximum
    if item.name not in OTHER_VALUES:
        pytest.fail(f"Option {item.name!r} has no choices or range: add a valid non-default value to OTHER_VALUES.")
    return OTHER_VALUES[item.name]


def every_rendering_option_changed() -> dict[str, Any]:
    return {item.name: other_value(item, how.choices, how.maximum) for item, how in rendering_fields()}


# -- money guards --------------------------------------------------------------------------------------


def test_every_rendering_option_changed_keeps_key_body_and_idempotency_key(
    recording_service: RecordingService, recording_client: RunflowClient  # noqa: F811
) -> None:
    """The golden default create, byte for byte, with every rendering option away from its default."""
    changed = every_rendering_option_changed()
    assert all(changed[name] != getattr(PostProcessing(), name) for name in rendering_names())
    body, sent, cache_key = create_sent(recording_service, recording_client, aspect_ratio="1:1", resolution="2K",
                                         **changed)
    assert body == golden_body("default_create"), COST_OF_A_BODY_CHANGE
    assert cache_key == GOLDEN["default_create"]["cache_key"], COST_OF_A_KEY_CHANGE
    assert sent == GOLDEN["default_create"]["idempotency_key"], COST_OF_AN_IDEMPOTENCY_CHANGE


def test_every_rendering_option_changed_is_served_by_the_one_paid_run(emu, client_for) -> None:
    client = client_for(emu)
    first = client.isolate(golden_photo(), aspect_ratio="1:1", resolution="1K")
    again = client.isolate(golden_photo(), aspect_ratio="1:1", resolution="1K", **every_rendering_option_changed())
    assert again.cached and again.cache_key == first.cache_key
    assert emu.stats["creates"] == 1 and emu.stats["uploads"] == 1


@pytest.mark.parametrize("name", rendering_names())
def test_no_rendering_option_moves_the_cache_key(name: str, emu, client_for) -> None:
    """One option at a time, so a failure names the option that costs money."""
    item, how = next((item, how) for item, how in rendering_fields() if item.name == name)
    client = client_for(emu)
    keys = {client.isolate(golden_photo(), aspect_ratio="1:1", **{name: value}).cache_key
            for value in (item.default, other_value(item, how.choices, how.maximum))}
    assert len(keys) == 1, f"rendering option {name!r} changes the cache key: {COST_OF_A_KEY_CHANGE}"
    assert emu.stats["creates"] == 1, f"rendering option {name!r} started a second paid run"


def test_the_two_declarations_share_no_name() -> None:
    assert not set(rendering_names()) & set(option_names())


def _what_reaches_the_service(emu, client: RunflowClient, options: dict[str, Any]) -> tuple[Any, ...]:
    """(the create's input without the image URL, the uploads' types and sizes) of one isolate."""
    before = set(emu._state.assets)
    result = client.isolate(golden_photo(), **options)
    run_input = {key: value for key, value in emu._state.runs[result.run_id].input.items() if key != "image_url"}
    uploads = sorted((asset.mime_type, asset.size_bytes) for key, asset in emu._state.assets.items()
                     if key not in before)
    return run_input, uploads


@pytest.mark.parametrize("name", option_names())
def test_every_isolation_option_is_sent_or_changes_the_upload(name: str, emulator_factory, client_for,
                                                              tmp_path) -> None:
    """An `IsolationParams` option is in the cache key, so each value is a new paid run: something must
    apply it, in the create's input (sent) or in what is uploaded (like `lossless`). Otherwise it is a
    local option declared in the wrong place: move it to `PostProcessing` (docs/CHANGING.md)."""
    item, how = next((item, how) for item, how in option_fields() if item.name == name)
    value = other_value(item, (*how.choices, *how.client_choices))
    emu = emulator_factory()
    default_call = _what_reaches_the_service(emu, client_for(emu, cache_dir=tmp_path / "a"), {})
    changed_call = _what_reaches_the_service(emu, client_for(emu, cache_dir=tmp_path / "b"), {name: value})
    assert changed_call != default_call, (
        f"IsolationParams option {name!r} is neither sent nor changes the upload, yet every value of it is a new "
        "paid result. A local option belongs in post_processing.PostProcessing (see docs/CHANGING.md)."
    )


def test_an_unknown_option_names_both_declarations_and_spends_nothing(emu, client_for) -> None:
    with pytest.raises(InputRejected, match=r"Unknown option\(s\) glow.*rendering options .*margin"):
        client_for(emu).isolate_many([golden_photo()], glow=True)
    with pytest.raises(InputRejected, match="margin must be a number from 0 to 40"):
        client_for(emu).isolate(golden_photo(), margin=55)
    assert emu.stats["creates"] == 0 and emu.stats["uploads"] == 0


# -- margin ----------------------------------------------------------------------------------------------


def product_on_transparent(height: int = 100, width: int = 160) -> np.ndarray:
    """A red box filling most of a transparent canvas, off centre, with one soft edge column."""
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[5:95, 10:150] = (200, 30, 30, 255)
    rgba[5:95, 150] = (200, 30, 30, 128)
    return rgba


@pytest.mark.parametrize("margin", [10, 25, 40])
def test_margin_shrinks_the_product_centred_and_keeps_the_canvas(margin: int) -> None:
    rgba = product_on_transparent()
    out = apply_margin(rgba, margin)
    assert out.shape == rgba.shape
    top, bottom, left, right = alpha_bounds(out[..., 3])
    keep = 1 - margin / 100
    assert right - left <= round(160 * keep) and bottom - top <= round(100 * keep)
    assert abs((left + right) / 2 - 80) <= 1 and abs((top + bottom) / 2 - 50) <= 1, "centred"
    box = alpha_bounds(rgba[..., 3])
    assert abs((right - left) / (bottom - top) - (box[3] - box[2]) / (box[1] - box[0])) < 0.05, "shape kept"
    assert out[50, 80].tolist() == [200, 30, 30, 255], "the product's colour, no dark fringe inside"


def test_margin_leaves_a_product_already_inside_untouched_and_zero_is_the_default() -> None:
    small = np.zeros((100, 100, 4), np.uint8)
    small[40:60, 30:50] = 255
    assert apply_margin(small, 30) is small
    assert PostProcessing().margin == 0 and not PostProcessing().changes_pixels()
    assert PostProcessing(margin=1).changes_pixels(alpha_only=True), "margin moves the mask too"
    for bad in (-1, 41, float("nan"), True, "10"):
        with pytest.raises(InputRejected, match="margin must be a number from 0 to 40"):
            PostProcessing(margin=bad)


def test_margin_in_the_library_is_free_and_keeps_the_canvas(emulator_factory, client_for, tmp_path) -> None:
    emu = emulator_factory(cheap=False)
    client = client_for(emu)
    plain = client.isolate(product_photo(4), aspect_ratio="1:1", resolution="1K")
    framed = client.isolate(product_photo(4), aspect_ratio="1:1", resolution="1K", margin=30,
                            background="white")
    assert emu.stats["creates"] == 1 and framed.cached and framed.cache_key == plain.cache_key
    assert framed.image.size == plain.image.size and framed.image.mode == "RGB"
    assert not framed.image_bytes, "rendered pixels are not the bytes the service sent"
    framed.image.save(tmp_path / "margin-30-on-white.png")
    inside = np.asarray(framed.image)
    width = inside.shape[1]
    border = round(width * 0.15) - 1
    assert (inside[:, :border] == 255).all() and (inside[:, -border:] == 255).all(), "15 % white on each side"


def test_the_nodes_draw_margin_into_every_output_from_the_cache(emulator_factory, monkeypatch, tmp_path) -> None:
    emu = emulator_factory(cheap=False)
    monkeypatch.setattr(PACK.node_machinery.execution, "client_factory", bound_to(emu, tmp_path))
    PACK.runflow_api.money.recent.shared_recent_results().clear()
    photo = torch.from_numpy(product_photo(5)).float().div(255).unsqueeze(0)
    image, mask, rgba, _, _ = run_node(photo)
    framed_image, framed_mask, framed_rgba, info, _ = run_node(photo, margin=40, background="#00ff00")
    assert emu.stats["creates"] == 1 and '"cached": true' in info
    assert framed_mask.shape == mask.shape and framed_image.shape == image.shape
    height, width = mask.shape[1:]
    top, bottom, left, right = alpha_bounds(framed_mask[0].numpy())
    assert right - left <= round(width * 0.6) and bottom - top <= round(height * 0.6)
    assert torch.equal(framed_rgba[..., 3], framed_mask), "rgba's alpha is the framed mask"
    assert torch.equal(framed_image[0, 0, 0], torch.tensor([0.0, 1.0, 0.0])), "the margin shows the background"


def test_the_node_input_is_read_from_the_declaration() -> None:
    node = PACK.nodes.PRODUCT_ISOLATION
    declared = {spec.name: spec for spec in node.inputs}
    for item, how in rendering_fields():
        spec = declared[item.name]
        assert spec.default == item.default and spec.tooltip == how.tooltip and spec.optional
        assert spec.choices == how.choices and (spec.minimum, spec.maximum) == (how.minimum, how.maximum)


def _row(text: str, name: str) -> str:
    rows = [line for line in text.splitlines() if line.startswith(f"| `{name}` |")]
    assert len(rows) == 1, f"one table row for `{name}` expected"
    return rows[0]


HELP_PAGES = [f"web/docs/{node}{lang}.md" for node in ("RunflowProductIsolation", "RunflowProductIsolationFromURL")
              for lang in ("", "/ja", "/zh")]


@pytest.mark.parametrize("page", [*HELP_PAGES, "docs/nodes.md"])
def test_each_help_table_row_agrees_with_the_declaration(page: str) -> None:
    """Every rendering option has its row in every help page and in docs/nodes.md, naming its default and
    each of its choices (or its range's ends) as the declaration says them."""
    text = (Path(__file__).resolve().parents[1] / page).read_text(encoding="utf-8")
    for item, how in rendering_fields():
        row = _row(text, item.name)
        said = [item.default, *how.choices] + ([] if how.maximum is None else [int(how.maximum)])
        for value in said:
            assert f"`{value}`" in row or f"..{value}" in row, f"{page}: the `{item.name}` row does not name {value!r}"
