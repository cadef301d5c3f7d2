"""What the node tests share: the pack loaded as ComfyUI loads it, its own engine modules, an emulator bound
to the nodes' client factory (`Bound`, the `bound` fixture), stand-ins for ComfyUI's modules (`FakeComfy`,
`ExecutingContext`) and a product picture as a ComfyUI IMAGE (`product_tensor`).

Fixtures are used by importing them by name into a test module (pytest finds them there); `isolated_dirs`
is autouse wherever it is imported, so no node test touches the user's key, cache or journal.
"""

from __future__ import annotations

import contextvars
import importlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from comfy_harness import load_pack
from support import EMULATOR_KEY, FAST_POLL, FAST_RETRY

PACK = load_pack()
nodes = PACK.nodes
machinery = PACK.node_machinery


def pack_module(dotted: str) -> Any:
    """The pack's own copy of a module, named as in the checkout (`"runflow_api.settings.config"`): the copy the node
    layer uses, so exception classes match. Spelled out in full, so a moved module is found by name."""
    return importlib.import_module(f"{PACK.__name__}.{dotted}")


config, errors, service = (pack_module("runflow_api.settings.config"), pack_module("runflow_api.errors"),
                           pack_module("runflow_api.service_choice"))
Emulator, Faults = pack_module("runflow_api.emulator").Emulator, pack_module("runflow_api.emulator").Faults
RunflowClient = pack_module("runflow_api.client").RunflowClient
IsolationResult = pack_module("runflow_api.pictures.result_types").IsolationResult

KEY = "rf_live_emulator_nodes_tests"
BACKGROUND = (232, 232, 232)


# -- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with Emulator(api_key=KEY, latency=0.2, port=0) as emu:
        yield emu


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's key, cache or journal."""
    monkeypatch.setenv("RUNFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RUNFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RUNFLOW_KEY_FILE", str(tmp_path / "no_key"))
    # The pack carries its own copy of the engine (loaded as ComfyUI loads it), with its own memory tier.
    PACK.runflow_api.money.recent.shared_recent_results().clear()
    monkeypatch.delenv("RUNFLOW_API_KEY", raising=False)
    monkeypatch.delenv("RUNFLOW_API_BASE", raising=False)
    monkeypatch.delenv("RUNFLOW_MODE", raising=False)


class Bound:
    """The nodes' client factory bound to one emulator: the pack's own `RunflowClient` (the engine copy the
    node layer uses), with the emulator's `key` and any `client_options` of the test's (a cache folder, fast
    polls); remembers the options the node passed."""

    def __init__(self, emu: Any, *, key: str = KEY, **client_options: Any) -> None:
        self.emu, self.key, self.client_options = emu, key, client_options
        self.options: list[dict[str, Any]] = []

    def __call__(self, **options: Any) -> Any:
        self.options.append(options)
        return RunflowClient(api_key=self.key, base_url=self.emu.base_url, service_id="emulator",
                             **self.client_options, **options)


def bound_to(emu: Any, tmp_path: Path) -> Bound:
    """The nodes' client factory on `emu` (the suite's key, fast retries and polls), with its cache and data
    under `tmp_path`: for a test that brings its own emulator."""
    return Bound(emu, key=EMULATOR_KEY, retry=FAST_RETRY, poll=FAST_POLL, cache_dir=tmp_path / "cache",
                 data_dir=tmp_path / "data")


def own_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **emulator: Any) -> Iterator[Bound]:
    """For a fixture to `yield from`: the nodes' client factory on an emulator of the test's own (started with
    `emulator`'s options), with data, cache and key file under `tmp_path` and no recent results carried
    over from another test."""
    for name, value in {"RUNFLOW_DATA_DIR": tmp_path / "data", "RUNFLOW_CACHE_DIR": tmp_path / "cache",
                        "RUNFLOW_KEY_FILE": tmp_path / "no_key"}.items():  # fmt: skip
        monkeypatch.setenv(name, str(value))
    PACK.runflow_api.money.recent.shared_recent_results().clear()
    with Emulator(api_key=KEY, port=0, **emulator) as emu:
        factory = Bound(emu)
        monkeypatch.setattr(machinery.execution, "client_factory", factory)
        yield factory


def run_node(image: torch.Tensor, **inputs: Any) -> tuple[torch.Tensor, ...]:
    """The photo isolation node run once (1:1, 1K unless `inputs` say otherwise): its four outputs."""
    params = {"aspect_ratio": "1:1", "resolution": "1K", "unique_id": "5", **inputs}
    return tuple(PACK.nodes.RunflowProductIsolation().isolate(image, **params)["result"])


@pytest.fixture
def bound(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Bound:
    emulator.reset_stats()
    for name, value in vars(Faults()).items():
        if not name.startswith("_"):
            monkeypatch.setattr(emulator.faults, name, value)
    factory = Bound(emulator)
    monkeypatch.setattr(machinery.execution, "client_factory", factory)
    return factory


class FakeComfy:
    """Stand-ins for the parts of ComfyUI the nodes use, behaving as ComfyUI's do (including its
    progress hook, which raises the interruption itself when Cancel was pressed)."""

    class InterruptProcessingException(Exception):
        pass

    def __init__(self) -> None:
        self.interrupted = False
        self.bar_updates: list[tuple[int, int]] = []
        self.texts: list[tuple[str, str]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        fake = self

        class ProgressBar:
            def __init__(self, total: int, node_id: str | None = None) -> None:
                self.total = total

            def update_absolute(self, value: int, total: int | None = None, preview: Any = None) -> None:
                fake.throw_exception_if_processing_interrupted()
                fake.bar_updates.append((value, self.total))

        class Server:
            def send_progress_text(self, text: str, node_id: str) -> None:
                fake.texts.append((text, node_id))

            def send_sync(self, event: str, data: dict[str, Any]) -> None:
                fake.events.append((event, data))

        self.modules = {
            "comfy": types.ModuleType("comfy"),
            "comfy.utils": types.SimpleNamespace(ProgressBar=ProgressBar),
            "comfy.model_management": types.SimpleNamespace(
                InterruptProcessingException=self.InterruptProcessingException,
                processing_interrupted=lambda: fake.interrupted,
                throw_exception_if_processing_interrupted=self.throw_exception_if_processing_interrupted,
            ),
            "server": types.SimpleNamespace(PromptServer=types.SimpleNamespace(instance=Server())),
        }

    def throw_exception_if_processing_interrupted(self) -> None:
        if self.interrupted:
            self.interrupted = False
            raise self.InterruptProcessingException()


@pytest.fixture
def comfy(monkeypatch: pytest.MonkeyPatch) -> FakeComfy:
    fake = FakeComfy()
    for name, module in fake.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return fake


# -- pictures ------------------------------------------------------------------------------------------


def product_tensor(color: tuple[int, int, int], width: int = 96, height: int = 96) -> torch.Tensor:
    """A coloured square on a uniform light background, as a ComfyUI IMAGE of one item (support.product_photo
    is a photo-like numpy array instead)."""
    pixels = torch.tensor(BACKGROUND, dtype=torch.float32).div(255).expand(height, width, 3).clone()
    side = min(width, height) // 2
    top, left = (height - side) // 2, (width - side) // 2
    pixels[top : top + side, left : left + side] = torch.tensor(color, dtype=torch.float32) / 255
    return pixels.unsqueeze(0)


class ExecutingContext:
    """ComfyUI's `comfy_execution.utils` as the nodes read it: `get_executing_context()` gives the prompt
    and node being executed (or validated), from a context variable ComfyUI sets around the call."""

    def __init__(self) -> None:
        self.current: contextvars.ContextVar[Any] = contextvars.ContextVar("current_executing_context", default=None)
        self.module = types.SimpleNamespace(get_executing_context=lambda: self.current.get(None))

    def run(self, prompt_id: str, node_id: str, call: Any) -> Any:
        context = types.SimpleNamespace(prompt_id=prompt_id, node_id=node_id, list_index=None)
        return contextvars.copy_context().run(lambda: (self.current.set(context), call())[1])


@pytest.fixture
def executing(monkeypatch: pytest.MonkeyPatch) -> ExecutingContext:
    stand_in = ExecutingContext()
    monkeypatch.setitem(sys.modules, "comfy_execution", types.ModuleType("comfy_execution"))
    monkeypatch.setitem(sys.modules, "comfy_execution.utils", stand_in.module)
    return stand_in
