"""What the three nodes do when ComfyUI runs them: inputs to the engine, its results to outputs.

Thin on purpose. Each run function takes every declared input by name (the declaration fills the
defaults) and returns a `NodeResult`; the V3 and classic node classes only wrap these. Everything that
talks to Runflow, retries, caches, resumes or guards spending lives in `runflow_api`, so the nodes, the
CLI and the tests share one path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import torch

from ..runflow_api import images, service
from ..runflow_api.client import RunflowClient
from ..runflow_api.errors import InputRejected, RunflowError
from ..runflow_api.redact import strip_userinfo
from ..runflow_api.results import Charges, ImageURL, IsolationResult
from .feedback import Feedback, dollars
from .spec import NodeResult
from .tensors import assemble_outputs, tensor_to_arrays

TRANSPARENT = "transparent"


def client_factory(**options: Any) -> RunflowClient:
    """The client for one execution: the real service or the offline emulator, per the saved mode.

    A module-level function so that tests can hand in a client bound to their own emulator instead of
    mocking the engine's internals.
    """
    return service.make_client(**options)


# -- ComfyUI's checks, shared by both node APIs (classmethod bodies: `cls` first) ---------------------


def isolation_fingerprint(cls: type, force_rerun: bool = False, **_: Any) -> Any:
    """ComfyUI re-executes a node only when this value changes: always with force_rerun (NaN never
    equals itself), and when the service mode changes, so emulator results never stand in for real
    ones."""
    return float("nan") if force_rerun else service.current_mode()


def isolation_validate(cls: type, background: str = TRANSPARENT) -> bool | str:
    """Refuse a bad colour before the queue runs anything (a linked value is checked at execution).
    Only `background` is named: ComfyUI skips its own type and range checks for the inputs named here."""
    try:
        images.parse_color(background)
    except RunflowError as exc:
        return exc.message
    return True


# -- run facts -----------------------------------------------------------------------------------------


def run_info_lines(results: Sequence[IsolationResult], *, emulator: bool) -> list[dict[str, Any]]:
    """One record per image, in batch order. `cost` is what this execution was charged for the item:
    "0.00" for a cached result, for a repeat of an identical image earlier in the same batch (it shares
    that image's run) and in emulator mode."""
    charges = Charges(emulator=emulator)
    return [
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
            "service": service.EMULATOR_SERVICE_ID if emulator else "runflow",
        }
        for index, result in enumerate(results)
    ]


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
    aspect_ratio: str,
    resolution: str,
    prompt: str,
    background: str,
    force_rerun: bool,
    spend_limit: float,
    concurrency: int,
    unique_id: str | None,
) -> NodeResult:
    color = images.parse_color(background)
    limit = spend_limit if spend_limit > 0 else None
    with client_factory(max_concurrency=concurrency, spend_limit=limit) as client:
        emulator = client.service_id == service.EMULATOR_SERVICE_ID
        feedback = Feedback(len(items), unique_id, emulator=emulator)
        outcomes = feedback.run(
            lambda: client.isolate_many(
                items,
                aspect_ratio=aspect_ratio,
                resolution=resolution,
                prompt=prompt or None,
                force_rerun=force_rerun,
                on_progress=feedback.on_progress,
                should_cancel=feedback.should_cancel,
            )
        )
    results = raise_failures(outcomes)
    info = run_info_lines(results, emulator=emulator)
    summary = {
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
    }
    run_info = "\n".join(json.dumps(line) for line in info)
    return NodeResult((*assemble_outputs(results, color), run_info), ui={"runflow": [summary]})


def isolate_images(image: torch.Tensor, *, unique_id: str | None = None, **options: Any) -> NodeResult:
    """Runflow Product Isolation: one run per image of the IMAGE batch."""
    return _isolate(tensor_to_arrays(image), unique_id=unique_id, **options)


def isolate_urls(image_urls: str, *, unique_id: str | None = None, **options: Any) -> NodeResult:
    """Runflow Product Isolation (URL): one run per line of `image_urls`."""
    return _isolate(parse_urls(image_urls), unique_id=unique_id, **options)


def stage_images(image: torch.Tensor, lossless: bool, *, unique_id: str | None = None) -> NodeResult:
    """Runflow Stage Image: upload each image (free) and return its signed URL, one per line."""
    arrays = tensor_to_arrays(image)
    with client_factory() as client:
        feedback = Feedback(len(arrays), unique_id, emulator=client.service_id == service.EMULATOR_SERVICE_ID)

        def stage_all() -> list[str]:
            staged = client.stage_many(
                arrays, lossless=lossless, should_cancel=feedback.should_cancel, on_progress=feedback.on_progress
            )
            return [asset.url for asset in staged]

        return NodeResult(("\n".join(feedback.run(stage_all)),))
