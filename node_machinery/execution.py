"""What the three nodes do when ComfyUI runs them: inputs to the engine, its results to outputs.

Thin on purpose. Each run function takes every declared input by name (the declaration fills the
defaults) and returns a `NodeResult`; the V3 and classic node classes only wrap these. Everything that
talks to Runflow, retries, caches, resumes or guards spending lives in `runflow_api`, so the nodes, the
CLI and the tests share one path.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..runflow_api import service_choice as service
from ..runflow_api.client import RunflowClient
from ..runflow_api.errors import InputRejected, RunflowError
from ..runflow_api.flow import run_metadata
from ..runflow_api.flow.run_metadata import METADATA_INPUT, node_metadata
from ..runflow_api.pictures import backgrounds, qa
from ..runflow_api.pictures.post_processing import TRANSPARENT, PostProcessing
from ..runflow_api.pictures.result_types import Charges, ImageURL, IsolationResult, output_sources, select_outputs
from ..runflow_api.product_isolation import IsolationParams
from ..runflow_api.service import address as service_address
from ..runflow_api.settings.redact import strip_userinfo
from . import linked_outputs, memory_budget
from .feedback import Feedback, dollars
from .input_masks import INPUT_MASK_SLOT, assemble_input_masks, place_results
from .preview import LatestPreview
from .spec import NodeResult
from .tensors import MASK_SLOT, SLOT_NAMES, TENSOR_SLOTS, assemble_outputs, stand_in, tensor_to_arrays


def client_factory(**options: Any) -> RunflowClient:
    """The client for one execution: the real service or the offline emulator, per the saved mode.

    A module-level function so that tests can hand in a client bound to their own emulator instead of
    mocking the engine's internals.
    """
    return service.make_client(**options)


# -- ComfyUI's checks, shared by both node APIs (classmethod bodies: `cls` first) ---------------------


def isolation_fingerprint(cls: type, force_rerun: bool = False, **_: Any) -> Any:
    """ComfyUI re-executes a node only when this value changes: always with force_rerun (NaN never
    equals itself), when the service mode changes, so emulator results never stand in for real ones,
    and when other image/mask/rgba outputs get connected, so a cached stand-in for an output that was
    not built never reaches a node connected since (`linked_outputs`)."""
    if force_rerun:
        return float("nan")
    prompt_id, node_id = executing_ids()
    linked = linked_outputs.linked_slots(linked_outputs.running_prompt(prompt_id), node_id)
    if linked is None:
        return service_address.current_mode()
    return f"{service_address.current_mode()} outputs {sorted(linked & (TENSOR_SLOTS | {INPUT_MASK_SLOT}))}"


def isolation_validate(cls: type, background: str = TRANSPARENT, metadata: str | None = "") -> bool | str:
    """Refuse a bad colour or bad metadata before the queue runs anything (a linked value is None here
    and is checked at execution). Only these inputs are named: ComfyUI skips its own type and range
    checks for the inputs named here, and `outputs` keeps ComfyUI's check that it is one of the choices."""
    try:
        backgrounds.parse_color(background)
        runs_metadata(metadata, node_id=None)
    except RunflowError as exc:
        return exc.message
    return True


# -- where a run came from -------------------------------------------------------------------------------


def executing_ids() -> tuple[str | None, str | None]:
    """(prompt id, node id) of what ComfyUI is executing or validating in this thread, from
    `comfy_execution.utils.get_executing_context()` (ComfyUI sets it around both calls); (None, None)
    outside ComfyUI or on a ComfyUI without it."""
    try:
        context = importlib.import_module("comfy_execution.utils").get_executing_context()
    except (ImportError, AttributeError):
        return None, None
    if context is None:
        return None, None
    prompt_id, node_id = getattr(context, "prompt_id", None), getattr(context, "node_id", None)
    return (str(prompt_id) if prompt_id else None), (str(node_id) if node_id else None)


def runs_metadata(text: str | None, *, node_id: str | None) -> dict[str, str]:
    """The metadata this node's runs carry: ComfyUI, the node and prompt ids, and the user's `metadata`.
    Checked in full here (keys, values, and the size with the pack's own keys, as every create will
    send it), so a bad input is refused at queue time, or at the latest before anything is spent. Without
    `node_id` (ComfyUI's validation hook gets none), the executing context's is used."""
    prompt_id, context_node_id = executing_ids()
    metadata = node_metadata(text, node_id=node_id or context_node_id, prompt_id=prompt_id)
    run_metadata.for_create(metadata, what=f"input '{METADATA_INPUT}'")
    return metadata


# -- run facts -----------------------------------------------------------------------------------------


def run_info_lines(
    results: Sequence[IsolationResult],
    *,
    emulator: bool,
    sources: Sequence[Mapping[str, int]] | None = None,
) -> list[dict[str, Any]]:
    """One record per image of the output batch, in its order. `cost` is what this execution was charged
    for the item: "0.00" for a cached result, for a repeat of an identical image earlier in the same
    batch (it shares that image's run), for a run's second and later images (the run is paid once) and
    in emulator mode. `sources` (with outputs="all") adds to each record which input it came from and
    which of that run's images it is."""
    charges = Charges(emulator=emulator)
    lines = [
        {
            "index": index,
            "run_id": result.run_id,
            "output_url": strip_userinfo(result.output_url) if result.output_url else None,
            "cost": dollars(charges.charge(result), emulator=emulator),
            "cached": result.cached,
            "resumed": result.resumed,
            "aspect_ratio": result.aspect_ratio,
            "resolution": result.resolution,
            "width": result.image.width,
            "height": result.image.height,
            "service": service_address.EMULATOR_SERVICE_ID if emulator else "runflow",
            "flags": result.flags,  # QA hints from the matte (docs/qa.md); never a failure
        }
        for index, result in enumerate(results)
    ]
    if sources is not None:
        lines = [{**line, **source} for line, source in zip(lines, sources, strict=True)]
    return lines


def raise_failures(outcomes: Sequence[IsolationResult | RunflowError]) -> list[IsolationResult]:
    """The results, or ONE error naming every failed item, its run and the reason. The engine has
    already cached the items that succeeded, so running again pays only for the failed ones."""
    failures = [(index, outcome) for index, outcome in enumerate(outcomes) if isinstance(outcome, RunflowError)]
    if not failures:
        return [outcome for outcome in outcomes if isinstance(outcome, IsolationResult)]
    succeeded = len(outcomes) - len(failures)
    head = f"{len(failures)} of {len(outcomes)} image(s) failed."
    if succeeded:
        head += f" The {succeeded} that succeeded are cached: queue again to retry only the failed ones."
    items = [f"- image {index}, run {error.run_id or '(none)'}: {error.message}" for index, error in failures]
    raise RunflowError("\n".join([head, *items]))


def parse_urls(text: str) -> list[ImageURL]:
    """One URL per non-empty line. Each is an ImageURL, so the engine only ever treats it as a URL
    (https, or http to the local emulator), never as a file on this server."""
    lines = [(number, line.strip()) for number, line in enumerate((text or "").splitlines(), 1) if line.strip()]
    if not lines:
        raise InputRejected("image_urls is empty: give one https image URL per line.")
    return [ImageURL(url, label=f"line {number} of image_urls") for number, url in lines]


# -- the runs ------------------------------------------------------------------------------------------


def _isolate(
    items: list[Any],
    *,
    force_rerun: bool,
    spend_limit: float,
    concurrency: int,
    metadata: str,
    unique_id: str | None,
    graph: Any,
    **inputs: Any,
) -> NodeResult:
    """`inputs`: the node's post-processing inputs (`PostProcessing`) and its isolation options
    (`IsolationParams`, every other one), each checked by its own definition before anything is spent.
    `graph`: ComfyUI's hidden PROMPT, so that only the outputs it connects are built (`linked_outputs`),
    and a batch whose outputs cannot fit in memory is refused first (`memory_budget`)."""
    post, options = PostProcessing.split(inputs)
    params = IsolationParams.of(**options)
    create_metadata = runs_metadata(metadata, node_id=unique_id)
    build = linked_outputs.slots_to_build(graph, unique_id, executing_ids()[0])
    memory_budget.check(
        items, aspect_ratio=params.aspect_ratio, resolution=params.resolution, build=build,
        several=post.outputs != PostProcessing.outputs,
    )  # fmt: skip
    place = build is None or INPUT_MASK_SLOT in build  # issue #37: placing costs CPU, so only when connected
    pictures, run_info, summary, input_masks = _run(
        items, params=params, post=post, force_rerun=force_rerun, spend_limit=spend_limit,
        concurrency=concurrency, metadata=create_metadata, unique_id=unique_id, background=post.color, place=place,
    )  # fmt: skip
    # Which outputs hold the batch; the others are 1x1 stand-ins (nothing is connected to them).
    summary["outputs_built"] = [name for slot, name in SLOT_NAMES.items() if build is None or slot in build]
    summary["outputs_built"] += ["input_mask"] if place else []
    # `pictures` holds the only references to the decoded results left: each is freed once converted, and
    # drawn (edges, margin...) on its way into the tensors (one copy at a time).
    outputs = assemble_outputs(pictures, post, build)
    input_mask = assemble_input_masks(input_masks) if input_masks is not None else stand_in(MASK_SLOT)
    return NodeResult((*outputs, run_info, input_mask), ui={"runflow": [summary]})


def _run(
    items: list[Any],
    *,
    params: IsolationParams,
    post: PostProcessing,
    force_rerun: bool,
    spend_limit: float,
    concurrency: int,
    metadata: dict[str, str],
    unique_id: str | None,
    background: tuple[int, int, int] | None,
    place: bool = False,
) -> tuple[list[Image.Image | None], str, dict[str, Any], list[np.ndarray] | None]:
    """The runs of one execution: (the decoded image of each output item, run_info, the ui summary, and
    with `place` each item's mask on its input's canvas). The results themselves end here, so nothing but
    the returned list keeps their images alive (the live preview keeps only the newest until it is shown).
    `background` is what previews are shown over. The library is asked only for the selection of images
    (`outputs`): the node draws the other rendering options itself, picture by picture, as it fills its
    tensors."""
    limit = spend_limit if spend_limit > 0 else None
    with client_factory(max_concurrency=concurrency, spend_limit=limit) as client:
        emulator = client.service_id == service_address.EMULATOR_SERVICE_ID
        feedback = Feedback(len(items), unique_id, emulator=emulator, preview=LatestPreview(background))
        outcomes = feedback.run(
            lambda: client.isolate_many(
                items,
                params=params,
                force_rerun=force_rerun,
                on_progress=feedback.on_progress,
                should_cancel=feedback.should_cancel,
                metadata=metadata,
                outputs=post.outputs,
            )
        )
        results = raise_failures(outcomes)
        shown = select_outputs(results, post.outputs)
        # Before run_info, so that a result that could not be placed carries its `unplaced` flag there.
        input_masks = place_results(client, items, shown) if place else None
    sources = output_sources(results, post.outputs) if post.outputs != PostProcessing.outputs else None
    info = run_info_lines(shown, emulator=emulator, sources=sources)
    summary = {
        # Per input, as the price badge counts them; `outputs` only changes how many images are shown.
        "images": len(results),
        "paid_runs": len({result.run_id for result in results if not result.cached}),
        "cost": dollars(sum((Decimal(line["cost"]) for line in info), Decimal(0)), emulator=emulator),
        "elapsed_s": round(feedback.tally.snapshot().elapsed_s, 1),
        "cached": sum(1 for result in results if result.cached),
        # Runs paid earlier (a Cancel, a crash) and collected now instead of being paid again.
        "resumed": sum(1 for result in results if result.resumed),
        "emulator": emulator,
        # What this ComfyUI has spent at this service since it started (the ledger's session).
        "session_cost": dollars(client.ledger.totals(client.service_id).session_cost, emulator=emulator),
        # Images of the output batch with QA flags, and how many carry each flag: "2 flagged (empty)".
        "flagged": sum(1 for line in info if line["flags"]),
        "flags": {flag: sum(flag in line["flags"] for line in info) for flag in qa.ALL_FLAGS
                  if any(flag in line["flags"] for line in info)},
    }
    pictures: list[Image.Image | None] = [result.image for result in shown]
    return pictures, "\n".join(json.dumps(line) for line in info), summary, input_masks


def isolate_images(
    image: torch.Tensor, *, unique_id: str | None = None, graph: Any = None, **options: Any
) -> NodeResult:
    """Runflow Product Isolation: one run per image of the IMAGE batch."""
    return _isolate(tensor_to_arrays(image), unique_id=unique_id, graph=graph, **options)


def isolate_urls(image_urls: str, *, unique_id: str | None = None, graph: Any = None, **options: Any) -> NodeResult:
    """Runflow Product Isolation (URL): one run per line of `image_urls`."""
    return _isolate(parse_urls(image_urls), unique_id=unique_id, graph=graph, **options)


def stage_images(image: torch.Tensor, lossless: bool, *, unique_id: str | None = None) -> NodeResult:
    """Runflow Stage Image: upload each image (free) and return its signed URL, one per line."""
    arrays = tensor_to_arrays(image)
    with client_factory() as client:
        feedback = Feedback(len(arrays), unique_id, emulator=client.service_id == service_address.EMULATOR_SERVICE_ID)

        def stage_all() -> list[str]:
            staged = client.stage_many(
                arrays, lossless=lossless, should_cancel=feedback.should_cancel, on_progress=feedback.on_progress
            )
            return [asset.url for asset in staged]

        return NodeResult(("\n".join(feedback.run(stage_all)),))
