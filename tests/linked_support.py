"""What the linked-outputs tests and the input-mask node tests share: a prompt shaped as ComfyUI sends it
(`graph`) and the two parts of ComfyUI the pack reads while a prompt runs (`Running`: the queue and the
executing context), so a node can be run as inside ComfyUI without it."""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping
from typing import Any

import pytest
from node_support import ExecutingContext

ISOLATION = "RunflowProductIsolation"


def graph(*consumers: tuple[str, str, list[Any]], node_id: str = "2") -> dict[str, Any]:
    """LoadImage -> the isolation node `node_id` -> one node per (id, class, link)."""
    prompt: dict[str, Any] = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "sneaker.jpg", "upload": "image"}},
        node_id: {"class_type": ISOLATION, "inputs": {"image": ["1", 0], "aspect_ratio": "1:1", "resolution": "1K"}},
    }
    for consumer_id, class_type, link in consumers:
        prompt[consumer_id] = {"class_type": class_type, "inputs": {"images": link, "filename_prefix": "x"}}
    return prompt


class PromptQueue:
    """ComfyUI's PromptQueue as the pack reads it: running items are (number, prompt_id, prompt, extra, outputs)."""

    def __init__(self, running: Mapping[str, Any]) -> None:
        self.running = running

    def get_current_queue_volatile(self) -> tuple[list[Any], list[Any]]:
        return [
            (index, prompt_id, prompt, {}, []) for index, (prompt_id, prompt) in enumerate(self.running.items())
        ], []


class Running:
    """The two parts of ComfyUI the pack reads while a prompt runs: the queue (`server.PromptServer`) and
    the executing context (`comfy_execution.utils`). `prompts` are the running prompts by prompt id."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.prompts: dict[str, Any] = {}
        self.context = ExecutingContext()
        instance = types.SimpleNamespace(prompt_queue=PromptQueue(self.prompts))
        server = types.SimpleNamespace(PromptServer=types.SimpleNamespace(instance=instance))
        monkeypatch.setitem(sys.modules, "server", server)
        monkeypatch.setitem(sys.modules, "comfy_execution", types.ModuleType("comfy_execution"))
        monkeypatch.setitem(sys.modules, "comfy_execution.utils", self.context.module)

    def run(self, prompt_id: str, node_id: str, call: Any) -> Any:
        return self.context.run(prompt_id, node_id, call)

    def fingerprint(self, node_class: Any, prompt: dict[str, Any]) -> Any:
        """`node_class`'s fingerprint (IS_CHANGED) for node "2" while `prompt` is the running prompt, as
        ComfyUI asks for it before deciding whether to run the node or answer from its cache."""
        self.prompts["p1"] = prompt
        return self.run("p1", "2", lambda: node_class.IS_CHANGED(graph={}, unique_id="2"))
