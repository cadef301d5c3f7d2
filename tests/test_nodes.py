# ruff: noqa: F811 - node_support's fixtures are imported by name and used as arguments
"""The nodes, executed with real torch tensors against a real emulator over loopback HTTP.

The pack is loaded as ComfyUI loads it (`load_pack`), and `node_machinery.execution.client_factory` is
swapped for one bound to this module's emulator, so everything below the node (staging, runs, cache,
journal) is the real engine. Where ComfyUI's own modules matter (progress bar, status line, Cancel),
small stand-ins for `comfy.utils`, `comfy.model_management` and `server` are put in `sys.modules`,
behaving as ComfyUI's do.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from node_support import (  # noqa: F401 - fixtures, used by name
    KEY,
    PACK,
    Bound,
    Emulator,
    ExecutingContext,
    FakeComfy,
    IsolationResult,
    RunflowClient,
    bound,
    comfy,
    config,
    emulator,
    errors,
    executing,
    isolated_dirs,
    machinery,
    nodes,
    pack_module,
    product_tensor,
    service,
)
from PIL import Image
from support import UploadWatch, fetched, hold_puts, peak_overlap


def isolate(image: torch.Tensor, **inputs: Any) -> dict[str, Any]:
    params = {"aspect_ratio": "1:1", "resolution": "1K", "unique_id": "7", **inputs}
    return nodes.RunflowProductIsolation().isolate(image, **params)


def run_info(output: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output["result"][3].splitlines()]


def centre(tensor: torch.Tensor, index: int = 0) -> torch.Tensor:
    return tensor[index, tensor.shape[1] // 2, tensor.shape[2] // 2]


# -- outputs -------------------------------------------------------------------------------------------


def test_outputs_have_comfyui_shapes_ranges_and_mask_polarity(bound: Bound) -> None:
    output = isolate(product_tensor((200, 30, 30), 256, 256))  # 256 px: not enlarged more than 4x to 1K
    image, mask, rgba, info_text, _ = output["result"]
    assert image.shape == (1, 1024, 1024, 3) and mask.shape == (1, 1024, 1024) and rgba.shape == (1, 1024, 1024, 4)
    for tensor in (image, mask, rgba):
        assert tensor.dtype == torch.float32 and tensor.device.type == "cpu"
        assert float(tensor.min()) >= 0.0 and float(tensor.max()) <= 1.0
    assert float(centre(mask)) > 0.99, "mask must be 1 on the product"
    assert float(mask[0, :20, :20].max()) < 0.01, "mask must be 0 on the background"
    assert torch.equal(rgba[..., 3], mask)
    assert torch.equal(rgba[..., :3], image)  # transparent: the model's RGB as returned
    assert torch.allclose(centre(image), torch.tensor([200, 30, 30]) / 255, atol=0.02)
    [line] = run_info(output)
    assert line["run_id"] in bound.emu.runs
    assert line["output_url"].startswith(bound.emu.base_url)
    assert (line["index"], line["cached"], line["resumed"], line["cost"]) == (0, False, False, "0.00")
    assert (line["aspect_ratio"], line["resolution"], line["width"], line["height"]) == (
        "1:1",
        "1K",
        1024,
        1024,
    )
    assert line["service"] == "emulator"
    assert line["flags"] == [], "a clean cut-out carries no QA flag"
    assert output["ui"]["runflow"] == [
        {
            "images": 1,
            "paid_runs": 1,
            "cost": "0.00",
            "elapsed_s": pytest.approx(output["ui"]["runflow"][0]["elapsed_s"]),
            "cached": 0,
            "resumed": 0,
            "emulator": True,
            "session_cost": "0.00",
            "flagged": 0,
            "flags": {},
            "outputs_built": ["image", "mask", "rgba", "input_mask"],  # outside ComfyUI, no prompt: all of them
        }
    ]
    assert bound.options == [{"max_concurrency": 8, "spend_limit": None}]


def test_flags_reach_run_info_and_the_summary_without_failing_the_run(bound: Bound) -> None:
    blank = torch.full((1, 256, 256, 3), 225 / 255)  # nothing to isolate: the emulator returns an empty matte
    output = isolate(torch.cat([product_tensor((200, 30, 30), 256, 256), blank]))  # 256 px: not `enlarged` at 1K
    assert [line["flags"] for line in run_info(output)] == [[], ["empty"]]
    summary = output["ui"]["runflow"][0]
    assert (summary["flagged"], summary["flags"]) == (1, {"empty": 1})
    assert output["result"][1][1].max() == 0, "the empty matte is still delivered: a flag is only a hint"


def test_background_colour_composites_the_image_output_only(bound: Bound) -> None:
    photo = product_tensor((30, 30, 200))
    transparent = isolate(photo)["result"]
    white = isolate(photo, background="#ffffff")["result"]
    assert bound.emu.stats["creates"] == 1, "the background is applied locally: the second run is a cache hit"
    assert torch.all(white[0][0, :20, :20] == 1.0)
    assert torch.allclose(centre(white[0]), torch.tensor([30, 30, 200]) / 255, atol=0.02)
    assert torch.equal(white[1], transparent[1]) and torch.equal(white[2], transparent[2])
    grey = isolate(photo, background="128,128,128")["result"][0]
    assert torch.allclose(grey[0, 0, 0], torch.tensor([128 / 255] * 3))


def test_a_batch_runs_at_once_and_comes_back_in_order(bound: Bound) -> None:
    colours = [(200, 30, 30), (30, 160, 30), (30, 30, 200)]
    batch = torch.cat([product_tensor(colour) for colour in colours])
    output = isolate(batch, concurrency=3)
    image = output["result"][0]
    for index, colour in enumerate(colours):
        assert torch.allclose(centre(image, index), torch.tensor(colour) / 255, atol=0.02), f"item {index}"
    info = run_info(output)
    assert [line["index"] for line in info] == [0, 1, 2]
    runs = [bound.emu.runs[line["run_id"]] for line in info]
    assert len({line["run_id"] for line in info}) == 3 and bound.emu.stats["creates"] == 3
    assert peak_overlap(runs) >= 2, "runs were serial"
    assert bound.options[-1]["max_concurrency"] == 3


def result_of(image: Image.Image, index: int = 0, **facts: Any) -> Any:
    base = {
        "run_id": f"run_{index}",
        "cost": Decimal("0.27"),
        "output_url": f"https://x/{index}.png",
        "cached": False,
        "aspect_ratio": "1:1",
        "resolution": "1K",
        "cache_key": f"k{index}",
        "index": index,
    }
    return IsolationResult(image=image, **{**base, **facts})


def test_results_of_different_sizes_are_letterboxed_centred_into_one_batch() -> None:
    """Items of one IMAGE batch share a shape, so the engine's outputs normally match; should they not
    (e.g. a service answer of another size), the node pads instead of crashing."""
    wide = Image.new("RGBA", (8, 4), (255, 0, 0, 255))
    tall = Image.new("RGBA", (2, 6), (0, 0, 255, 128))
    rendering = pack_module("runflow_api.pictures.post_processing").PostProcessing
    image, mask, rgba = machinery.tensors.assemble_outputs([wide, tall], rendering())
    assert image.shape == (2, 6, 8, 3) and mask.shape == (2, 6, 8) and rgba.shape == (2, 6, 8, 4)
    assert torch.equal(mask[0, 1:5], torch.ones(4, 8)) and float(mask[0, 0].max()) == 0 == float(mask[0, 5].max())
    assert torch.equal(image[0, 0], torch.zeros(8, 3)), "transparent: padding is black in image"
    assert torch.allclose(mask[1, :, 3:5], torch.full((6, 2), 128 / 255))
    assert float(mask[1, :, :3].max()) == 0 == float(rgba[1, :, 5:].max()), "padding is fully transparent"
    on_white, _, _ = machinery.tensors.assemble_outputs([wide, tall], rendering(background="white"))
    assert torch.equal(on_white[0, 0], torch.ones(8, 3)) and torch.equal(on_white[1, :, 0], torch.ones(6, 3))


def test_assembled_tensors_are_exactly_each_level_over_255() -> None:
    """Every float is the correctly rounded k/255 of its 8-bit source, in all three outputs, with and
    without a background: computed here the plain way (astype, then divide) and compared bit for bit."""
    pixels = np.random.default_rng(3).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    ref_rgb = pixels[..., :3].astype(np.float32) / 255
    ref_alpha = pixels[..., 3].astype(np.float32) / 255
    for color in (None, (10, 200, 30)):
        post_processing = pack_module("runflow_api.pictures.post_processing")
        post = post_processing.PostProcessing(background="transparent" if color is None else "10,200,30")
        image, mask, rgba = machinery.tensors.assemble_outputs([Image.fromarray(pixels)], post)
        composite = pack_module("runflow_api.pictures.backgrounds").composite
        shown = ref_rgb if color is None else composite(pixels[..., :3], ref_alpha, color).astype(np.float32) / 255
        assert np.array_equal(rgba[0].numpy(), np.dstack([ref_rgb, ref_alpha]))
        assert np.array_equal(mask[0].numpy(), ref_alpha)
        assert np.array_equal(image[0].numpy(), shown)


def test_run_info_charges_each_paid_run_once() -> None:
    red = Image.new("RGB", (4, 4), (255, 0, 0))
    results = [
        result_of(red, 0),
        result_of(red, 1, run_id="run_0"),  # an identical image later in the batch shares run_0
        result_of(red, 2, cached=True, run_id="run_old"),
    ]
    lines = machinery.execution.run_info_lines(results, emulator=False)
    assert [line["cost"] for line in lines] == ["0.27", "0.00", "0.00"]
    assert [line["service"] for line in lines] == ["runflow"] * 3
    assert [line["cost"] for line in machinery.execution.run_info_lines(results, emulator=True)] == ["0.00"] * 3


def test_tensor_conversion_clamps_and_rounds() -> None:
    image = torch.tensor([[[[-0.5, 0.5, 1.2], [0.999, 0.0, 1.0]]]], dtype=torch.float32)
    [array] = machinery.tensors.tensor_to_arrays(image)
    assert array.dtype.name == "uint8" and array.shape == (1, 2, 3)
    assert array.tolist() == [[[0, 128, 255], [255, 0, 255]]]


@pytest.mark.parametrize(
    ("make_bad", "message"),
    [
        (lambda t: t.index_put_((torch.tensor([1]),), torch.tensor(float("nan"))), "NaN"),
        (lambda t: t.mul_(255), "0..1"),
        (lambda t: t.index_put_((torch.tensor([1]),), torch.tensor(float("inf"))), "infinite"),
    ],
    ids=["nan", "0-255-floats", "inf"],
)
def test_a_broken_tensor_is_refused_before_anything_is_paid(bound: Bound, make_bad: Any, message: str) -> None:
    batch = torch.rand((2, 32, 32, 3))
    batch[1] = make_bad(batch[1].reshape(-1)).reshape(32, 32, 3)
    for node_call in (lambda: isolate(batch), lambda: nodes.RunflowStageImage().stage(batch)):
        with pytest.raises(errors.InputRejected, match=message) as refused:
            node_call()
        assert "image 2 of 2" in refused.value.message, "the message names the batch item"
    assert bound.emu.stats["requests"] == 0


def test_an_empty_batch_is_a_clear_error_and_costs_nothing(bound: Bound) -> None:
    with pytest.raises(errors.InputRejected, match="empty"):
        isolate(torch.zeros((0, 64, 64, 3)))
    with pytest.raises(errors.InputRejected, match="empty"):
        nodes.RunflowStageImage().stage(torch.zeros((0, 64, 64, 3)))
    with pytest.raises(errors.InputRejected, match="one https image URL per line"):
        nodes.RunflowProductIsolationFromURL().isolate(" \n \n", aspect_ratio="1:1", resolution="1K")
    assert bound.emu.stats["requests"] == 0


# -- money ---------------------------------------------------------------------------------------------


def test_second_execution_is_a_cache_hit_and_force_rerun_pays_again(bound: Bound) -> None:
    photo = product_tensor((200, 120, 30))
    first = run_info(isolate(photo))
    second_output = isolate(photo)
    second = run_info(second_output)
    assert bound.emu.stats["creates"] == 1
    assert second[0]["cached"] is True and second[0]["run_id"] == first[0]["run_id"]
    assert second_output["ui"]["runflow"][0]["cached"] == 1 and second_output["ui"]["runflow"][0]["paid_runs"] == 0
    forced = run_info(isolate(photo, force_rerun=True))
    assert (
        bound.emu.stats["creates"] == 2 and forced[0]["cached"] is False and forced[0]["run_id"] != first[0]["run_id"]
    )


def test_spend_limit_refuses_before_anything_is_created(bound: Bound) -> None:
    batch = torch.cat([product_tensor((200, 30, 30)), product_tensor((30, 30, 200))])
    with pytest.raises(errors.SpendLimitExceeded, match=r"\$0\.50"):
        isolate(batch, spend_limit=0.5)
    assert bound.emu.stats["creates"] == 0
    assert bound.options[-1]["spend_limit"] == 0.5
    isolate(batch, spend_limit=0.54)
    assert bound.emu.stats["creates"] == 2
    assert bound.options[-1]["spend_limit"] == 0.54


@pytest.mark.parametrize(
    ("name", "value"),
    [("spend_limit", float("nan")), ("spend_limit", float("inf")), ("spend_limit", -float("inf")),
     ("spend_limit", 1e9), ("concurrency", float("nan")), ("concurrency", float("inf")), ("concurrency", 0)],
)
def test_a_non_finite_or_out_of_range_number_input_is_refused_before_anything_is_spent(
    bound: Bound, name: str, value: float
) -> None:
    batch = torch.cat([product_tensor((200, 30, 30)), product_tensor((30, 30, 200))])
    for run in (lambda: isolate(batch, **{name: value}),
                lambda: nodes.RunflowProductIsolationFromURL().isolate("https://example.com/a.png", aspect_ratio="1:1",
                                                                      resolution="1K", unique_id="7",
                                                                      **{name: value})):
        with pytest.raises(errors.InputRejected, match=f"Input '{name}' is .*finite number from"):
            run()
    assert bound.emu.stats["requests"] == 0 and bound.options == []


def test_every_number_input_of_every_node_is_checked() -> None:
    """The check reads the declaration: each INT/FLOAT input of the three nodes refuses NaN."""
    checked: dict[str, set[str]] = {}
    for node_class in (nodes.RunflowProductIsolation, nodes.RunflowProductIsolationFromURL, nodes.RunflowStageImage):
        for spec in node_class.NODE.inputs:
            if spec.kind in ("INT", "FLOAT"):
                with pytest.raises(errors.InputRejected, match=spec.name):
                    spec.check_number(float("nan"))
                spec.check_number(spec.default)
                checked.setdefault(node_class.NODE.node_id, set()).add(spec.name)
    for node_id in ("RunflowProductIsolation", "RunflowProductIsolationFromURL"):
        assert {"spend_limit", "concurrency"} <= checked[node_id], "the money inputs are number inputs, checked"


def test_failed_items_make_one_error_after_the_others_are_cached(bound: Bound) -> None:
    colours = [(200, 30, 30), (30, 160, 30), (30, 30, 200), (200, 200, 30)]
    batch = torch.cat([product_tensor(colour) for colour in colours])
    bound.emu.faults.seed = 3
    bound.emu.faults.fail_rate = 0.5
    with pytest.raises(errors.RunflowError) as raised:
        isolate(batch)
    message = str(raised.value)
    failed_runs = [run_id for run_id, run in bound.emu.runs.items() if run["status"] == "failed"]
    assert 0 < len(failed_runs) < 4, "this seed must fail some runs, not all"
    assert message.startswith(f"{len(failed_runs)} of 4 image(s) failed.")
    assert f"The {4 - len(failed_runs)} that succeeded are cached" in message
    assert all(run_id in message for run_id in failed_runs)
    assert message.count("\n- image ") == len(failed_runs)
    bound.emu.faults.fail_rate = 0.0
    creates = bound.emu.stats["creates"]
    info = run_info(isolate(batch))
    assert bound.emu.stats["creates"] - creates == len(failed_runs), "the re-run paid only for the failures"
    assert sum(line["cached"] for line in info) == 4 - len(failed_runs)


def test_missing_key_reaches_the_user_verbatim(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNFLOW_MODE", "runflow")
    with pytest.raises(errors.MissingApiKey) as raised:
        isolate(product_tensor((200, 30, 30)))
    assert str(raised.value) == config.missing_key_message()


def test_emulator_mode_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real factory: RUNFLOW_MODE=emulator starts the in-process emulator; no key, no cost."""
    monkeypatch.setenv("RUNFLOW_MODE", "emulator")
    monkeypatch.setenv("RUNFLOW_EMULATOR_LATENCY", "0.1")
    output = isolate(product_tensor((30, 160, 30)))
    [line] = run_info(output)
    assert line["service"] == "emulator" and line["cost"] == "0.00"
    assert line["output_url"].startswith(service.local_emulator().base_url)
    assert output["ui"]["runflow"][0]["emulator"] is True


# -- staging and URLs ----------------------------------------------------------------------------------


def test_stage_image_returns_hosted_urls_that_the_url_node_isolates(bound: Bound) -> None:
    batch = torch.cat([product_tensor((200, 30, 30)), product_tensor((30, 30, 200))])
    (text,) = nodes.RunflowStageImage().stage(batch)
    urls = text.split("\n")
    assert len(urls) == 2 and all(url.startswith(bound.emu.base_url) for url in urls)
    assert bound.emu.stats["confirmations"] == 2
    output = nodes.RunflowProductIsolationFromURL().isolate(
        text + "\n\n", aspect_ratio="4:3", resolution="1K", background="white"
    )
    image, mask, rgba, _, _ = output["result"]
    assert image.shape == (2, 768, 1024, 3) and mask.shape == (2, 768, 1024)
    assert torch.allclose(centre(image, 1), torch.tensor([30, 30, 200]) / 255, atol=0.02)
    assert [line["aspect_ratio"] for line in run_info(output)] == ["4:3", "4:3"]
    auto = nodes.RunflowProductIsolationFromURL().isolate(urls[0], aspect_ratio="auto", resolution="1K")
    assert run_info(auto)[0]["aspect_ratio"] == "1:1", "a URL's pixels are read, so 'auto' works"


def test_a_re_signed_url_of_the_same_image_is_not_paid_again(bound: Bound) -> None:
    photo = product_tensor((200, 30, 30))
    first, second = (nodes.RunflowStageImage().stage(photo)[0] for _ in range(2))
    assert first != second, "two uploads, two signed URLs"
    runs = [nodes.RunflowProductIsolationFromURL().isolate(url, aspect_ratio="1:1", resolution="1K")
            for url in (first, second)]
    assert bound.emu.stats["creates"] == 1
    assert [run_info(output)[0]["cached"] for output in runs] == [False, True]


def test_stage_image_uploads_a_batch_together_in_order_with_progress(bound: Bound, comfy: FakeComfy) -> None:
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200), (200, 30, 200)]
    batch = torch.cat([product_tensor(colour) for colour in colours])
    hold_puts(bound.emu, 0.3)
    with UploadWatch(bound.emu) as watch:
        (text,) = nodes.RunflowStageImage().stage(batch, lossless=True, unique_id="9")
    assert watch.most >= 2, "the uploads overlapped"
    for colour, url in zip(colours, text.split("\n"), strict=True):
        pixels = np.asarray(Image.open(io.BytesIO(fetched(url))))
        assert tuple(pixels[48, 48]) == colour, "URLs in batch order"
    assert comfy.bar_updates[-1] == (6, 6) and comfy.events[-1][1]["final"] is True


def test_stage_image_cancel_stops_the_batch(bound: Bound, comfy: FakeComfy) -> None:
    hold_puts(bound.emu, 1.0)
    batch = torch.cat([product_tensor((10 * i, 30, 30)) for i in range(16)])

    def press_cancel_once_uploading() -> None:
        while not bound.emu.assets:
            time.sleep(0.005)
        comfy.interrupted = True

    known = len(bound.emu.assets)
    threading.Thread(target=press_cancel_once_uploading, daemon=True).start()
    with pytest.raises(FakeComfy.InterruptProcessingException):
        nodes.RunflowStageImage().stage(batch, unique_id="9")
    assert len(bound.emu.assets) - known <= 8, "queued uploads never started (the client's bound is 8)"
    assert bound.emu.stats["confirmations"] == 0


@pytest.mark.parametrize(
    "line",
    ["{photo}", "{missing}", "/etc/passwd", "file://{photo}", "relative/photo.png", "ftp://127.0.0.1/x.png",
     "https://127.0.0.1/a b.png"],
)
def test_the_url_node_never_reads_a_local_file(bound: Bound, tmp_path: Path, line: str) -> None:
    """With --listen, anyone who can queue a prompt types this input: a path must not upload the file."""
    photo = tmp_path / "secret.png"
    Image.new("RGB", (64, 64), (10, 200, 10)).save(photo)
    text = "\n" + line.format(photo=photo, missing=tmp_path / "missing.png")
    with pytest.raises(errors.InputRejected) as refused:
        nodes.RunflowProductIsolationFromURL().isolate(text, aspect_ratio="1:1", resolution="1K")
    message = refused.value.message
    assert "line 2 of image_urls" in message and "https" in message
    assert "not found" not in message.lower() and str(Path.cwd()) not in message, "no file-existence oracle"
    assert bound.emu.stats["requests"] == 0


def test_a_password_in_an_input_url_is_never_shown(bound: Bound) -> None:
    host = bound.emu.base_url.split("//", 1)[1]
    url = f"http://shopuser:hunter2secret@{host}/files/no-such-photo.png?sig=abc"  # answers 4xx at once
    with pytest.raises(errors.InputRejected) as refused:
        nodes.RunflowProductIsolationFromURL().isolate(url, aspect_ratio="1:1", resolution="1K")
    shown = str(refused.value)
    assert "hunter2secret" not in shown and "shopuser" not in shown and "sig=abc" not in shown
    assert f"{host}/files/no-such-photo.png" in shown and bound.emu.stats["creates"] == 0


# -- progress and cancel -------------------------------------------------------------------------------


def test_progress_bar_and_status_line_follow_the_batch(bound: Bound, comfy: FakeComfy) -> None:
    batch = torch.cat([product_tensor((200, 30, 30)), product_tensor((30, 30, 200))])
    isolate(batch, unique_id="42")
    assert comfy.bar_updates[-1] == (2, 2)
    values = [value for value, _ in comfy.bar_updates]
    assert values == sorted(values)
    statuses = [data for event, data in comfy.events if event == "runflow.status"]
    assert statuses and all(status["node"] == "42" for status in statuses)
    assert "2/2 done" in statuses[-1]["text"] and "emulator" in statuses[-1]["text"]
    # ComfyUI's progress text would be appended below the node, over its neighbour: the strip says it all.
    assert comfy.texts == []
    assert set(statuses[-1]) == {
        "node", "text", "total", "done", "cached", "resumed", "failed", "queued", "running", "waiting", "cost",
        "elapsed_s", "emulator", "final", "waiting_for_machine", "shared", "waited_for_machine",
    }  # fmt: skip
    assert statuses[-1]["final"] is True and not any(status["final"] for status in statuses[:-1])
    assert (statuses[-1]["node"], statuses[-1]["total"], statuses[-1]["done"]) == ("42", 2, 2)
    assert statuses[-1]["emulator"] is True and statuses[-1]["cost"] == "0.00"
    elapsed = statuses[-1]["elapsed_s"]
    assert len(statuses) <= elapsed + 2 + 2, "status is rate-limited to about once a second plus once per item"


def test_the_progress_bar_goes_through_the_v3_execution_api_where_comfyui_offers_it(
    bound: Bound, comfy: FakeComfy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ComfyUI whose versioned API has `ComfyAPISync().execution.set_progress` gets the bar there (not
    through comfy.utils.ProgressBar); the status line and Cancel stay as they are (no V3 call for them)."""
    calls: list[tuple[int, int, str]] = []

    class Execution:
        def set_progress(self, value: int, max_value: int, node_id: str | None = None) -> None:
            calls.append((value, max_value, str(node_id)))

    class ComfyAPISync:
        execution = Execution()

    monkeypatch.setitem(sys.modules, "comfy_api", types.ModuleType("comfy_api"))
    monkeypatch.setitem(sys.modules, "comfy_api.v0_0_2", types.SimpleNamespace(ComfyAPISync=ComfyAPISync))
    isolate(torch.cat([product_tensor((200, 30, 30)), product_tensor((30, 30, 200))]), unique_id="5")
    assert calls and calls[-1] == (2, 2, "5") and comfy.bar_updates == []
    statuses = [data for event, data in comfy.events if event == "runflow.status"]
    assert statuses and "2/2 done" in statuses[-1]["text"]


def test_without_a_v3_execution_object_the_classic_bar_is_used(comfy: FakeComfy, monkeypatch: Any) -> None:
    """ComfyUI 0.3.64's ComfyAPISync() has no `execution` attribute yet."""
    monkeypatch.setitem(sys.modules, "comfy_api", types.ModuleType("comfy_api"))
    monkeypatch.setitem(sys.modules, "comfy_api.v0_0_2", types.SimpleNamespace(ComfyAPISync=object))
    machinery.feedback.Feedback(1, "3", emulator=True).push(final=True)
    assert comfy.bar_updates == [(0, 1)]


def test_cancel_interrupts_within_a_quarter_second_and_the_run_resumes(comfy: FakeComfy, monkeypatch: Any) -> None:
    with Emulator(api_key=KEY, latency=1.5, port=0) as slow:
        monkeypatch.setattr(machinery.execution, "client_factory", Bound(slow))
        photo = product_tensor((120, 30, 200))
        pressed: list[float] = []

        def press_cancel() -> None:
            time.sleep(0.5)
            pressed.append(time.monotonic())
            comfy.interrupted = True

        threading.Thread(target=press_cancel, daemon=True).start()
        with pytest.raises(FakeComfy.InterruptProcessingException):
            isolate(photo)
        stopped = time.monotonic()
        assert pressed and stopped - pressed[0] < 0.25
        assert slow.stats["creates"] == 1
        output = isolate(photo)
        [line] = run_info(output)
        assert line["resumed"] is True and slow.stats["creates"] == 1, "the cancelled run was collected, not paid twice"
        assert output["ui"]["runflow"][0]["resumed"] == 1


def test_outside_comfyui_cancel_is_the_engines_runflow_cancelled() -> None:
    feedback = machinery.feedback.Feedback(1, None, emulator=True)

    def cancelled() -> None:
        raise errors.RunflowCancelled("Cancelled.")

    with pytest.raises(errors.RunflowCancelled):
        feedback.run(cancelled)


def test_paid_service_reports_run_cost_and_session_spend(bound: Bound, monkeypatch: pytest.MonkeyPatch) -> None:
    def paid_client(**options: Any) -> RunflowClient:  # the emulator, seen as a paid service (not "emulator")
        return RunflowClient(api_key=KEY, base_url=bound.emu.base_url, **options)

    monkeypatch.setattr(machinery.execution, "client_factory", paid_client)
    first = isolate(product_tensor((200, 30, 30)))["ui"]["runflow"][0]
    second = isolate(product_tensor((30, 30, 200)))["ui"]["runflow"][0]
    assert (first["emulator"], first["cost"], second["cost"]) == (False, "0.27", "0.27")
    assert Decimal(second["session_cost"]) - Decimal(first["session_cost"]) == Decimal("0.27")


# -- metadata and every returned image (issue #11) -------------------------------------------------------

PACK_METADATA = {"pack": "runflow-product-isolation", "pack_version": PACK.runflow_api.__version__}
RUN_INFO_KEYS_0_1_0 = {"index", "run_id", "output_url", "cost", "cached", "resumed", "aspect_ratio", "resolution",
                       "width", "height", "service"}  # fmt: skip


def darkened(colour: tuple[int, int, int], number: int) -> torch.Tensor:
    """The emulator's output `number` of a multi-image run: the first as rendered, each later one mirrored
    (the centred product stays put) and 15% darker per step."""
    factor = 1.0 - 0.15 * (number - 1)
    return torch.tensor([round(value * factor) for value in colour], dtype=torch.float32) / 255


def test_outputs_all_puts_every_returned_image_in_the_batch_and_run_info_names_its_source(bound: Bound) -> None:
    bound.emu.faults.output_count = 3
    colours = [(200, 30, 30), (30, 30, 200)]
    output = isolate(torch.cat([product_tensor(colour) for colour in colours]), outputs="all")
    image, mask, rgba, _, _ = output["result"]
    assert image.shape == (6, 1024, 1024, 3) and mask.shape == (6, 1024, 1024) and rgba.shape == (6, 1024, 1024, 4)
    sources = [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    for position, (input_index, number) in enumerate(sources):
        assert torch.allclose(centre(image, position), darkened(colours[input_index], number), atol=0.02), position
        assert float(centre(mask, position)) > 0.99
    info = run_info(output)
    assert [(line["index"], line["input"], line["output"], line["outputs"]) for line in info] == [
        (position, input_index, number, 3) for position, (input_index, number) in enumerate(sources)
    ]
    assert len({line["run_id"] for line in info[:3]}) == 1 and len({line["run_id"] for line in info}) == 2
    assert len({line["output_url"] for line in info}) == 6
    assert bound.emu.stats["creates"] == 2
    summary = output["ui"]["runflow"][0]
    assert (summary["images"], summary["paid_runs"], summary["cached"]) == (2, 2, 0), "counted per input"


def test_outputs_first_is_todays_node_even_when_runs_return_several(bound: Bound) -> None:
    bound.emu.faults.output_count = 3
    output = isolate(product_tensor((30, 160, 30)))
    image, mask, rgba, _, _ = output["result"]
    assert image.shape[0] == mask.shape[0] == rgba.shape[0] == 1
    assert torch.allclose(centre(image), darkened((30, 160, 30), 1), atol=0.02), "the run's first image"
    [line] = run_info(output)
    # As before, plus the QA flags (issue #23): a key added to a JSON line, none taken away or renamed.
    assert set(line) == RUN_INFO_KEYS_0_1_0 | {"flags"}, "run_info lines are as before"


def test_a_cache_hit_with_outputs_all_serves_every_image(bound: Bound) -> None:
    bound.emu.faults.output_count = 3
    photo = product_tensor((200, 120, 30))
    isolate(photo)  # "first" asked: the library still caches the whole run
    from_memory = isolate(photo, outputs="all")
    PACK.runflow_api.money.recent.shared_recent_results().clear()  # as after a restart: from the disk cache
    from_disk = isolate(photo, outputs="all")
    assert bound.emu.stats["creates"] == 1
    for output in (from_memory, from_disk):
        info = run_info(output)
        assert [(line["output"], line["cached"], line["cost"]) for line in info] == [
            (1, True, "0.00"), (2, True, "0.00"), (3, True, "0.00"),
        ]  # fmt: skip
        for number in (1, 2, 3):
            assert torch.allclose(centre(output["result"][0], number - 1), darkened((200, 120, 30), number), atol=0.02)
    assert torch.equal(from_memory["result"][2], from_disk["result"][2])


def test_metadata_reaches_every_create_with_the_node_and_prompt_ids(bound: Bound, executing: ExecutingContext) -> None:
    batch = torch.cat([product_tensor((200, 30, 30)), product_tensor((30, 30, 200))])
    text = '{"sku": "A-123", "campaign": "spring"}'
    cls = nodes.RunflowProductIsolation
    assert executing.run("prompt-77", "12", lambda: cls.VALIDATE_INPUTS(background="white", metadata=text)) is True
    output = executing.run("prompt-77", "12", lambda: isolate(batch, metadata=text, unique_id="12"))
    expected = {**PACK_METADATA, "source": "comfyui", "comfyui_node_id": "12", "comfyui_prompt_id": "prompt-77",
                "sku": "A-123", "campaign": "spring"}  # fmt: skip
    assert [bound.emu.runs[line["run_id"]].metadata for line in run_info(output)] == [expected, expected]
    urls = nodes.RunflowStageImage().stage(product_tensor((30, 160, 30)))[0]
    by_url = nodes.RunflowProductIsolationFromURL().isolate(urls, aspect_ratio="1:1", resolution="1K", unique_id="3",
                                                            metadata='{"shop": "north"}')  # fmt: skip
    run = bound.emu.runs[run_info(by_url)[0]["run_id"]]
    assert run.metadata == {**PACK_METADATA, "source": "comfyui", "comfyui_node_id": "3", "shop": "north"}


BAD_METADATA = [
    ("{sku: 1}", "not valid JSON"),
    ('{"sku": 1}', "must be a string"),
    ('["A-123"]', "JSON object"),
    ('{"source": "mine"}', "set by the pack"),
    ('{"comfyui_node_id": "5"}', "set by the pack"),
    ('{"bad key": "x"}', "is not allowed"),
    (json.dumps({f"k{n}": "x" * 200 for n in range(25)}), "bytes as JSON"),
    (json.dumps({"note": f"key {KEY}"}), "credential"),
]


@pytest.mark.parametrize(("text", "needle"), BAD_METADATA, ids=[needle for _, needle in BAD_METADATA])
def test_bad_metadata_is_refused_at_queue_time_and_before_any_request(bound: Bound, text: str, needle: str) -> None:
    for cls in (nodes.RunflowProductIsolation, nodes.RunflowProductIsolationFromURL):
        message = cls.VALIDATE_INPUTS(background="transparent", metadata=text)
        assert isinstance(message, str) and "input 'metadata'" in message and needle in message, message
    with pytest.raises(errors.InputRejected) as refused:
        isolate(product_tensor((200, 30, 30)), metadata=text, unique_id="5")
    with pytest.raises(errors.InputRejected):
        nodes.RunflowProductIsolationFromURL().isolate(f"{bound.emu.base_url}/files/x.png", aspect_ratio="1:1",
                                                       resolution="1K", metadata=text)  # fmt: skip
    assert "input 'metadata'" in refused.value.message and needle in refused.value.message
    assert KEY not in str(refused.value) and KEY not in message
    assert bound.emu.stats["requests"] == 0


def test_empty_or_linked_metadata_passes_validation() -> None:
    """Empty is no metadata; a linked input is None at queue time and is checked when the node runs."""
    validate = nodes.RunflowProductIsolation.VALIDATE_INPUTS
    assert validate(background="transparent", metadata="") is True
    assert validate(background="transparent", metadata="  \n") is True
    assert validate(background="transparent", metadata=None) is True


def test_metadata_is_not_part_of_the_cache_key(bound: Bound) -> None:
    photo = product_tensor((120, 30, 200))
    first = run_info(isolate(photo, metadata='{"sku": "first"}'))
    second = run_info(isolate(photo, metadata='{"sku": "second", "extra": "x"}'))
    assert bound.emu.stats["creates"] == 1
    assert second[0]["cached"] is True and second[0]["run_id"] == first[0]["run_id"]
    assert bound.emu.runs[first[0]["run_id"]].metadata["sku"] == "first"
