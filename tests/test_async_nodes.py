# ruff: noqa: F811 - node_support's fixtures are imported by name and used as arguments
"""Several Runflow nodes of one graph at once: what the V3 nodes' `async def execute` does, two at a time.

Each node's work goes through `node_machinery.asynchronous.off_loop`, exactly as the V3 `execute` calls it, on
one event loop as ComfyUI's prompt worker runs it; the engine below is the real one against a real
emulator, the tensors are real torch tensors, and ComfyUI's modules are test_nodes' stand-ins. A real
ComfyUI 0.3.64 running two nodes of one graph at once is in test_comfyui_real.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import torch
from node_support import (  # noqa: F401 - fixtures, used by name
    KEY,
    PACK,
    Bound,
    Emulator,
    FakeComfy,
    bound,
    comfy,
    emulator,
    isolated_dirs,
    nodes,
    product_tensor,
)

off_loop = PACK.node_machinery.asynchronous.off_loop


def as_v3(cls: type, unique_id: str, **inputs: Any) -> Any:
    """The coroutine a V3 node's `execute` awaits, for `inputs` as ComfyUI passes them."""
    node = cls.NODE  # type: ignore[attr-defined]
    return off_loop(lambda: node.run(**node.bind((), inputs), unique_id=unique_id))


def isolate(unique_id: str, image: torch.Tensor, **inputs: Any) -> Any:
    return as_v3(nodes.RunflowProductIsolation, unique_id, image=image, aspect_ratio="1:1", resolution="1K",
                 **inputs)


async def first_then_rest(*calls: Any) -> tuple[Any, list[Any]]:
    """Start every call; when the first ends, note what it returned, then gather the rest."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    return next(iter(done)), await asyncio.gather(*tasks, return_exceptions=True)


def test_two_isolation_nodes_wait_for_the_service_together(comfy: FakeComfy, monkeypatch: Any) -> None:
    with Emulator(api_key=KEY, latency=1.5, port=0) as slow:
        monkeypatch.setattr(PACK.node_machinery.execution, "client_factory", Bound(slow))
        creates_when_first_ended: list[int] = []

        async def graph() -> list[Any]:
            _, outputs = await first_then_rest(
                isolate("1", product_tensor((200, 30, 30))), isolate("2", product_tensor((30, 30, 200))),
                watch(),
            )
            return outputs

        async def watch() -> None:
            while slow.stats["downloads"] == 0:
                await asyncio.sleep(0.01)
            creates_when_first_ended.append(slow.stats["creates"])

        first, second, _ = asyncio.run(graph())
    assert creates_when_first_ended == [2], "the second node's run was created while the first one waited"
    for output, centre_colour in ((first, (200, 30, 30)), (second, (30, 30, 200))):
        image = output.outputs[0]
        assert image.shape == (1, 1024, 1024, 3)
        assert torch.allclose(image[0, 512, 512], torch.tensor(centre_colour) / 255, atol=0.02)
    finals = {data["node"]: data for event, data in comfy.events if event == "runflow.status" and data["final"]}
    assert set(finals) == {"1", "2"} and all(status["done"] == 1 for status in finals.values())
    texts = {data["node"]: data["text"] for event, data in comfy.events if event == "runflow.status"}
    assert all("1/1 done" in texts[node] for node in ("1", "2")), "each node's status strip went to that node"
    assert comfy.bar_updates.count((1, 1)) == 2, "each node's progress bar reached its end"
    assert all(output.ui["runflow"][0]["paid_runs"] == 1 for output in (first, second)), "each badge counts its run"


def test_two_nodes_with_the_same_photo_and_settings_pay_once(bound: Bound, comfy: FakeComfy) -> None:
    photo = product_tensor((120, 160, 30))

    async def graph() -> list[Any]:
        return list(await asyncio.gather(isolate("1", photo), isolate("2", photo)))

    outputs = asyncio.run(graph())
    assert bound.emu.stats["creates"] == 1 and bound.emu.stats["uploads"] == 1
    infos = [output.outputs[3] for output in outputs]
    assert sorted('"cached": true' in info for info in infos) == [False, True], infos
    assert torch.equal(outputs[0].outputs[0], outputs[1].outputs[0])


def test_cancel_stops_two_running_nodes_within_a_quarter_second_and_both_runs_resume(
    comfy: FakeComfy, monkeypatch: Any
) -> None:
    """As ComfyUI does: the first node to see Cancel raises the interruption (which clears ComfyUI's flag),
    the prompt ends, and `asyncio.run` cancels the other node's task, whose engine thread must stop too."""
    with Emulator(api_key=KEY, latency=2.0, port=0) as slow:
        monkeypatch.setattr(PACK.node_machinery.execution, "client_factory", Bound(slow))
        photos = [product_tensor((200, 30, 30)), product_tensor((30, 30, 200))]
        pressed: list[float] = []

        async def graph() -> Any:
            tasks = [asyncio.ensure_future(isolate(str(n), photo)) for n, photo in enumerate(photos)]
            while slow.stats["creates"] < 2:
                await asyncio.sleep(0.01)
            pressed.append(time.monotonic())
            comfy.interrupted = True
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            return next(iter(done)).exception()

        raised = asyncio.run(graph())
        stopped = time.monotonic()
        assert isinstance(raised, FakeComfy.InterruptProcessingException)
        # asyncio.run returns once the loop's executor threads have ended: the engine calls stopped too.
        assert stopped - pressed[0] < 0.25, "both nodes stopped within a quarter second"
        assert slow.stats["creates"] == 2

        async def again() -> list[Any]:
            return list(await asyncio.gather(*(isolate(str(n), photo) for n, photo in enumerate(photos))))

        outputs = asyncio.run(again())
        assert slow.stats["creates"] == 2, "the cancelled runs were collected from the journal, not paid again"
        assert all(output.ui["runflow"][0]["resumed"] == 1 for output in outputs)


def test_two_stage_nodes_upload_at_once(bound: Bound, comfy: FakeComfy) -> None:
    async def graph() -> list[Any]:
        return list(await asyncio.gather(
            as_v3(nodes.RunflowStageImage, "1", image=product_tensor((200, 30, 30)), lossless=False),
            as_v3(nodes.RunflowStageImage, "2", image=product_tensor((30, 200, 30)), lossless=True),
        ))

    first, second = asyncio.run(graph())
    assert all(output.outputs[0].startswith(bound.emu.base_url) for output in (first, second))
    assert bound.emu.stats["confirmations"] == 2


@pytest.mark.parametrize("node_class", ["RunflowProductIsolation", "RunflowProductIsolationFromURL",
                                        "RunflowStageImage"])
def test_a_failing_node_raises_its_error_on_the_task(bound: Bound, node_class: str) -> None:
    settings = {"aspect_ratio": "1:1", "resolution": "1K"}
    inputs = {"RunflowProductIsolation": {"image": torch.zeros((0, 8, 8, 3)), **settings},
              "RunflowProductIsolationFromURL": {"image_urls": "", **settings},
              "RunflowStageImage": {"image": torch.zeros((0, 8, 8, 3))}}[node_class]
    with pytest.raises(PACK.runflow_api.errors.RunflowError):
        asyncio.run(as_v3(getattr(nodes, node_class), "9", **inputs))
    assert bound.emu.stats["creates"] == 0
