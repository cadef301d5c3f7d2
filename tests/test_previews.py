# ruff: noqa: F811 - node_support's fixtures are imported by name and used as arguments
"""Results as they arrive: each finished cut-out of a running batch is shown on the node.

The node runs for real (torch tensors, real emulator over loopback); ComfyUI's progress bar is a
stand-in that records what the node hands it, in the shapes ComfyUI 0.3.64 (`ProgressBar.update_absolute`
with a ("JPEG", image, size) preview) and the newer V3 API (`execution.set_progress(preview_image=...)`)
take.
"""

from __future__ import annotations

import sys
import time
import types
from decimal import Decimal
from typing import Any

import pytest
import torch
from node_support import (  # noqa: F401 - fixtures, used by name
    KEY,
    PACK,
    Bound,
    Emulator,
    FakeComfy,
    comfy,
    isolated_dirs,
    machinery,
    nodes,
    product_tensor,
)
from PIL import Image

preview = PACK.node_machinery.preview
ProgressEvent = PACK.runflow_api.pictures.result_types.ProgressEvent
IsolationResult = PACK.runflow_api.pictures.result_types.IsolationResult


class RecordingBar:
    """comfy.utils.ProgressBar as ComfyUI 0.3.64 has it, remembering each update and its preview."""

    updates: list[tuple[int, int, Any]] = []

    def __init__(self, total: int, node_id: str | None = None) -> None:
        self.total = total

    def update_absolute(self, value: int, total: int | None = None, preview: Any = None) -> None:
        RecordingBar.updates.append((value, self.total, preview))


@pytest.fixture
def bar(comfy: FakeComfy, monkeypatch: pytest.MonkeyPatch) -> type[RecordingBar]:
    RecordingBar.updates = []
    monkeypatch.setitem(sys.modules, "comfy.utils", types.SimpleNamespace(ProgressBar=RecordingBar))
    return RecordingBar


def three_one_after_another(monkeypatch: pytest.MonkeyPatch, emu: Any, **inputs: Any) -> dict[str, Any]:
    """Three photos through the node with one run slot, so they finish 0.6 s apart."""
    monkeypatch.setattr(machinery.execution, "client_factory", Bound(emu))
    batch = torch.cat([product_tensor(colour) for colour in ((200, 30, 30), (30, 200, 30), (30, 30, 200))])
    return nodes.RunflowProductIsolation().isolate(batch, aspect_ratio="1:1", resolution="1K", concurrency=1,
                                                   unique_id="8", **inputs)


def test_each_cut_out_appears_on_the_node_while_the_batch_runs(bar: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with Emulator(api_key=KEY, latency=0.6, port=0) as emu:
        three_one_after_another(monkeypatch, emu)
    shown = [(value, picture) for value, _, picture in bar.updates if picture is not None]
    values = [value for value, _ in shown]
    assert values[0] < 3 and values[-1] == 3 and values == sorted(set(values)), (
        f"previews at {values}: the first before the batch ended, then each newer cut-out, the last at the end")
    colours = {(200, 30, 30), (30, 200, 30), (30, 30, 200)}
    seen = set()
    for _, (kind, picture, size) in shown:
        assert (kind, size, picture.mode) == ("JPEG", 512, "RGB") and max(picture.size) <= 512
        centre = picture.getpixel((picture.width // 2, picture.height // 2))
        seen |= {colour for colour in colours if all(abs(a - b) <= 12 for a, b in zip(centre, colour, strict=True))}
        assert picture.getpixel((2, 2)) in preview._CHECKER_TONES, "transparent shows as a checkerboard"
    assert len(seen) == len(shown), "each preview was a cut-out that had just finished"


def test_the_preview_is_over_the_chosen_background(bar: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with Emulator(api_key=KEY, latency=0.2, port=0) as emu:
        three_one_after_another(monkeypatch, emu, background="#203040")
    pictures = [update[2][1] for update in bar.updates if update[2] is not None]
    assert pictures and all(picture.getpixel((2, 2)) == (32, 48, 64) for picture in pictures)


def test_where_comfyui_has_set_progress_the_preview_goes_there(comfy: FakeComfy, monkeypatch: Any) -> None:
    calls: list[dict[str, Any]] = []

    class Execution:
        def set_progress(self, value: int, max_value: int, node_id: str | None = None, preview_image: Any = None,
                         ignore_size_limit: bool = False) -> None:  # as comfy_api.latest has it
            calls.append({"value": value, "node_id": node_id, "preview_image": preview_image})

    class ComfyAPISync:
        execution = Execution()

    monkeypatch.setitem(sys.modules, "comfy_api", types.ModuleType("comfy_api"))
    monkeypatch.setitem(sys.modules, "comfy_api.v0_0_2", types.SimpleNamespace(ComfyAPISync=ComfyAPISync))
    with Emulator(api_key=KEY, latency=0.6, port=0) as emu:
        three_one_after_another(monkeypatch, emu)
    with_picture = [call for call in calls if call["preview_image"] is not None]
    assert with_picture[0]["value"] < 3 and with_picture[-1]["value"] == 3
    assert all(call["node_id"] == "8" for call in with_picture)
    assert all(isinstance(call["preview_image"], Image.Image) for call in with_picture)


def _finished(colour: tuple[int, int, int]) -> Any:
    image = Image.new("RGBA", (1024, 1024), (*colour, 255))
    result = IsolationResult(image=image, run_id="r", cost=Decimal("0.27"), output_url=None, cached=False,
                             aspect_ratio="1:1", resolution="1K", cache_key="k")
    return ProgressEvent("done", 0, result=result)


def test_previews_are_sent_at_most_twice_a_second_and_the_last_one_always() -> None:
    latest = preview.LatestPreview(None)
    assert latest.take() is None, "nothing finished yet"
    sent = []
    started = time.monotonic()
    for step in range(40):  # 40 items finishing 25 ms apart: one second
        latest.offer(_finished((step * 6, 0, 0)))
        picture = latest.take()
        if picture is not None:
            sent.append(picture)
        time.sleep(0.025)
    elapsed = time.monotonic() - started
    assert 1 <= len(sent) <= elapsed / preview.PREVIEW_INTERVAL_S + 1
    latest.offer(_finished((250, 0, 0)))
    last = latest.take(final=True)
    assert last is not None and last.getpixel((256, 256))[0] == 250, "the final update shows the newest at once"
    assert latest.take(final=True) is None, "nothing newer: nothing sent again"


def test_an_opaque_result_is_shown_as_it_is() -> None:
    picture = preview.render(Image.new("RGB", (2048, 1024), (10, 20, 30)), None)
    assert picture.size == (512, 256) and picture.getpixel((0, 0)) == (10, 20, 30)
