"""What the isolation nodes' `metadata`, `outputs` and `edges` inputs mean, kept out of the node layer.

The nodes (V1 or V3 schema alike) only read their widgets and call these: `node_metadata` turns the
optional `metadata` text into the runs' metadata (with the node and prompt ids), refusing bad text with
a message that names the input; `select_outputs` lays out the images of `outputs` = "first" or "all" as
one result per output image, and `output_sources` says which input each came from, for `run_info`.
Nothing here imports ComfyUI or torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from . import run_metadata
from .edges import EDGE_MODES, EDGES_AS_RETURNED
from .errors import InputRejected
from .result_types import OUTPUT_MODES, IsolationResult, check_outputs_mode

METADATA_INPUT = "metadata"
OUTPUTS_INPUT = "outputs"
OUTPUTS_DEFAULT = "first"
OUTPUTS_CHOICES = OUTPUT_MODES
METADATA_TOOLTIP = (
    'Optional: your own labels for these runs in Runflow\'s dashboard, as a JSON object of strings, e.g. '
    '{"sku": "A-123", "campaign": "spring"}. Never put a key or password here: it is saved in the workflow.'
)
EDGES_INPUT = "edges"
EDGES_DEFAULT = EDGES_AS_RETURNED
EDGES_CHOICES = EDGE_MODES
EDGES_TOOLTIP = (
    "'clean' gives partly transparent edges (hair, fur, fabric, motion blur) the product's own colour instead "
    "of the old background's, so no halo shows on a new background; alpha and `mask` are unchanged. Applies to "
    "`image` and `rgba`. Keep 'as returned' for glass and see-through products. Switching is free: the result "
    "comes from the cache."
)
INPUT_MASK_OUTPUT = "input_mask"  # issue #37: the isolation nodes' fifth output
INPUT_MASK_TOOLTIP = (
    "The product mask on the INPUT photo's canvas: its size, the product where it is in the photo (1 = "
    "product), for inpainting, relighting or Join Image with Alpha on the original. Found from the pixels (no "
    "paid run); all 0 when the product cannot be found (run_info flags it 'unplaced'). Inputs of different "
    "sizes are letterboxed, centred, to the batch's largest width and height (padding 0)."
)
OUTPUTS_TOOLTIP = (
    "first: one image per input (the run's first). all: every image each run returns, in input order; "
    "run_info's 'input' and 'output' say which input each came from."
)


def parse_metadata_input(text: str | None, *, input_name: str = METADATA_INPUT) -> dict[str, str]:
    """The node's `metadata` text as a dict of strings; empty text is no metadata. InputRejected names
    the input and the problem, so it reads well in ComfyUI's error dialog and in VALIDATE_INPUTS."""
    if text is None or not text.strip():
        return {}
    what = f"input '{input_name}'"
    try:
        value: Any = json.loads(text)
    except ValueError as exc:
        raise InputRejected(
            f"{what} is not valid JSON ({exc}). Write an object of strings, e.g. {{\"sku\": \"A-123\"}}, "
            "or leave it empty."
        ) from exc
    return run_metadata.validate(value, what=what)


def node_metadata(text: str | None, *, node_id: str | None, prompt_id: str | None) -> dict[str, str]:
    """The metadata an isolation node's runs carry: where they came from (ComfyUI, the node id, the prompt
    id) and the user's own keys, which may not reuse those names. The names are reserved even when an id
    is unknown (a check at queue time, a script), so a workflow's metadata is refused everywhere alike."""
    origin = {"source": "comfyui", "comfyui_node_id": str(node_id or ""), "comfyui_prompt_id": str(prompt_id or "")}
    merged = run_metadata.merge(origin, parse_metadata_input(text), what=f"input '{METADATA_INPUT}'")
    return {key: value for key, value in merged.items() if value or key not in origin}


def select_outputs(results: Sequence[IsolationResult], outputs: str) -> list[IsolationResult]:
    """One result per image to put in the node's output batch: each input's first image ("first"), or
    every image of every run, input by input ("all")."""
    if check_outputs_mode(outputs) == "first":
        return [result.only_first() for result in results]
    return [view for result in results for view in result.per_image()]


def output_sources(results: Sequence[IsolationResult], outputs: str) -> list[dict[str, int]]:
    """For each image `select_outputs` gives, in the same order: the input it came from (`input`, the
    batch index), its place among its run's images (`output`, 1-based) and how many the run returned
    (`outputs`). Merged into each run_info line."""
    taken = 1 if check_outputs_mode(outputs) == "first" else None
    return [
        {"input": result.index, "output": number, "outputs": result.returned_images}
        for result in results
        for number in range(1, (taken or len(result.images)) + 1)
    ]
