"""A batch whose outputs cannot fit in memory is refused before anything is uploaded or paid.

The figures are checked against the tensors the node really builds, and the refusal runs through the
node against a real emulator. The available memory is set the way a user in a container would set it
(RUNFLOW_MEMORY_AVAILABLE_MB); without it, the machine's own figure is read.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from comfy_harness import load_pack
from node_support import KEY, Bound, product_tensor
from PIL import Image

PACK = load_pack()
nodes = PACK.nodes
machinery = PACK.node_machinery
budget = importlib.import_module(f"{PACK.__name__}.node_machinery.memory_budget")
errors = importlib.import_module(f"{PACK.__name__}.runflow_api.errors")
Emulator = importlib.import_module(f"{PACK.__name__}.runflow_api.emulator").Emulator
ImageURL = importlib.import_module(f"{PACK.__name__}.runflow_api.pictures.result_types").ImageURL

GIB = 1024**3


@pytest.fixture
def bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bound]:
    for name, value in {"RUNFLOW_DATA_DIR": tmp_path / "data", "RUNFLOW_CACHE_DIR": tmp_path / "cache",
                        "RUNFLOW_KEY_FILE": tmp_path / "no_key"}.items():  # fmt: skip
        monkeypatch.setenv(name, str(value))
    with Emulator(api_key=KEY, latency=0.1, port=0) as emu:
        factory = Bound(emu)
        monkeypatch.setattr(machinery.execution, "client_factory", factory)
        yield factory


def test_the_figures_of_a_4k_batch_of_8() -> None:
    """The issue's batch: 8 x 4096 x 4096 x 3 float32 = 1.5 GiB for `image`, 4 GiB with mask and rgba."""
    sizes, exact = budget.canvases([np.zeros((8, 8, 3), np.uint8)] * 8, "1:1", "4K")
    assert exact and sizes == [(4096, 4096)] * 8
    assert budget.output_bytes(sizes, frozenset({0})) == int(1.5 * GIB)
    assert budget.output_bytes(sizes, frozenset({0, 3})) == int(1.5 * GIB), "run_info is text"
    assert budget.output_bytes(sizes, None) == 4 * GIB
    assert budget.output_bytes(sizes, frozenset()) == 0


def test_the_estimate_matches_what_the_node_builds() -> None:
    """Mixed sizes are padded to the largest width and height: the estimate counts that canvas."""
    pictures = [Image.new("RGBA", (16, 9)), Image.new("RGBA", (9, 16))]
    sizes = [(picture.width, picture.height) for picture in pictures]
    handed_over: list[Any] = list(pictures)
    defaults = importlib.import_module(f"{PACK.__name__}.runflow_api.pictures.post_processing").PostProcessing()
    built = machinery.tensors.assemble_outputs(handed_over, defaults)
    assert budget.output_bytes(sizes, None) == sum(tensor.numel() * tensor.element_size() for tensor in built)
    assert handed_over == [None, None], "each decoded picture is let go once converted"
    image_only = machinery.tensors.assemble_outputs(list(pictures), defaults, frozenset({0}))
    assert budget.output_bytes(sizes, frozenset({0})) == image_only[0].numel() * 4
    assert [tuple(tensor.shape) for tensor in image_only[1:]] == [(1, 1, 1), (1, 1, 1, 4)]


def test_auto_aspect_reads_each_array_and_counts_an_unread_url_at_the_smallest_canvas() -> None:
    sizes, exact = budget.canvases([np.zeros((300, 400, 3), np.uint8), np.zeros((400, 300, 3), np.uint8)], "auto", "1K")
    assert exact and sizes == [(1024, 768), (768, 1024)]
    sizes, exact = budget.canvases([ImageURL("https://example.com/a.png", label="line 1")], "auto", "1K")
    assert not exact and sizes == [(1024, 439)], "21:9 is the smallest canvas: a lower bound, never a false refusal"


def test_a_batch_over_the_available_memory_is_refused_with_the_figures_and_the_fix(
    bound: Bound, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(budget.AVAILABLE_ENV, "100")
    batch = torch.cat([product_tensor((200, 30, 30)), product_tensor((30, 30, 200))])
    with pytest.raises(errors.InputRejected) as refused:
        nodes.RunflowProductIsolation().isolate(batch, aspect_ratio="1:1", resolution="4K", unique_id="7")
    message = str(refused.value)
    assert "2 image(s) at 4K (4096x4096) need 1.00 GiB" in message
    assert "image, mask, rgba" in message and "0.10 GiB available" in message
    assert (
        "smaller batch" in message and "lower resolution" in message and "fewer of the image, mask and rgba" in message
    )
    assert "Nothing was uploaded or paid" in message
    assert bound.emu.stats["requests"] == 0, "refused before any request"


def test_the_url_node_is_refused_too_and_a_batch_that_fits_runs(bound: Bound, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(budget.AVAILABLE_ENV, "100")
    with pytest.raises(errors.InputRejected, match="at least 1.00 GiB"):
        nodes.RunflowProductIsolationFromURL().isolate(
            "https://example.com/a.png\nhttps://example.com/b.png", aspect_ratio="1:1", resolution="4K", outputs="all"
        )
    assert bound.emu.stats["requests"] == 0
    monkeypatch.setenv(budget.AVAILABLE_ENV, "64")  # 2 x 1K x (3 + 1 + 4) channels x 4 bytes = 64 MiB
    output: Any = nodes.RunflowProductIsolation().isolate(
        torch.cat([product_tensor((1, 2, 3)), product_tensor((4, 5, 6))]), aspect_ratio="1:1", resolution="1K"
    )
    assert output["result"][0].shape == (2, 1024, 1024, 3)


@pytest.mark.parametrize("value", ["lots", "-5", "nan", "inf"])
def test_a_bad_override_is_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(budget.AVAILABLE_ENV, value)
    with pytest.raises(errors.InputRejected, match=f"{budget.AVAILABLE_ENV} is '{value}'.*megabytes"):
        budget.available_bytes()


def test_without_an_override_the_machines_figure_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        pytest.skip("compares with Linux's /proc/meminfo")
    total = next(
        int(line.split()[1]) * 1024 for line in meminfo.read_text().splitlines() if line.startswith("MemTotal:")
    )
    monkeypatch.delenv(budget.AVAILABLE_ENV, raising=False)
    available = budget.available_bytes()
    assert available is not None and 0 < available <= total
