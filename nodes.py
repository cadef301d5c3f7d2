"""The pack's ComfyUI nodes: ComfyUI's IMAGE/MASK tensors in and out of the `runflow_api` engine.

Thin on purpose. This module converts tensors to the engine's uint8 arrays and back, maps widgets to
client options, and shows the user what is happening (progress bar, status line, Cancel). Everything
that talks to Runflow, retries, caches, resumes or guards spending lives in `runflow_api`, so the nodes,
the CLI and the tests share one path. ComfyUI's own modules are looked up at run time and may be absent
(plain pytest, scripts): progress and cancel then do nothing.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from types import ModuleType
from typing import Any, TypeVar

import numpy as np
import torch

from .runflow_api import images, service
from .runflow_api.client import RunflowClient
from .runflow_api.errors import InputRejected, RunflowCancelled, RunflowError
from .runflow_api.product_isolation import ASPECT_RATIOS, AUTO_ASPECT, PRICE_PER_IMAGE, RESOLUTIONS
from .runflow_api.progress import ProgressTally, TallySnapshot
from .runflow_api.redact import strip_userinfo
from .runflow_api.results import Charges, ImageURL, IsolationResult, ProgressEvent

log = logging.getLogger("runflow")

CATEGORY = "Runflow"
STATUS_EVENT = "runflow.status"
STATUS_INTERVAL_S = 1.0
TRANSPARENT = "transparent"
T = TypeVar("T")


def client_factory(**options: Any) -> RunflowClient:
    """The client for one execution: the real service or the offline emulator, per the saved mode.

    A module-level function so that tests can hand in a client bound to their own emulator instead of
    mocking the engine's internals.
    """
    return service.make_client(**options)


# -- what the user sees while a node runs -----------------------------------------------------------


def _optional_module(name: str) -> ModuleType | None:
    """A ComfyUI module, or None outside ComfyUI."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


class _Feedback:
    """Progress bar, status line and Cancel for one execution of one node.

    The engine calls `on_progress` from its worker threads, so that only feeds the thread-safe tally.
    ComfyUI binds its progress hook to the executing thread, and the engine polls `should_cancel` from
    that thread every 50 ms, so every update of the UI happens there, at most about once a second plus
    once per finished item.
    """

    def __init__(self, total: int, node_id: str | None, *, emulator: bool) -> None:
        self.tally = ProgressTally(total, emulator=emulator)
        self._node_id = node_id
        self._mm = _optional_module("comfy.model_management")
        utils = _optional_module("comfy.utils")
        self._bar = utils.ProgressBar(total, node_id=node_id) if utils is not None else None
        server = _optional_module("server")
        self._server = getattr(getattr(server, "PromptServer", None), "instance", None)
        self._last_push = float("-inf")
        self._last_finished = -1
        self._interrupt: BaseException | None = None
        self._display_failed = False

    def on_progress(self, event: ProgressEvent) -> None:
        self.tally.update(event)

    def should_cancel(self) -> bool:
        if self._interrupt is None and self._mm is not None and self._mm.processing_interrupted():
            return True
        self.push()
        return self._interrupt is not None

    def run(self, work: Callable[[], T]) -> T:
        """Run the engine call and show the final status. A Cancel surfaces as ComfyUI's interruption
        (reported as "interrupted", not as an error); outside ComfyUI as the engine's RunflowCancelled."""
        try:
            result = work()
        except RunflowCancelled:
            self._raise_interrupt()
            raise
        finally:
            self.push(final=True)
        self._raise_interrupt()  # a Cancel pressed as the last item finished still wins
        return result

    def push(self, *, final: bool = False) -> None:
        snapshot = self.tally.snapshot()
        now = time.monotonic()
        if not final and snapshot.finished == self._last_finished and now - self._last_push < STATUS_INTERVAL_S:
            return
        self._last_push, self._last_finished = now, snapshot.finished
        try:
            if self._bar is not None:
                self._bar.update_absolute(snapshot.finished)
            if self._server is not None and self._node_id is not None:
                self._server.send_progress_text(snapshot.status_line(), self._node_id)
                self._server.send_sync(STATUS_EVENT, status_payload(self._node_id, snapshot, final=final))
        except Exception as exc:  # a broken display must never cost a paid result
            if self._mm is not None and isinstance(exc, self._mm.InterruptProcessingException):
                # ComfyUI's progress hook saw the Cancel first and cleared the flag: remember it.
                self._interrupt = exc
            elif not self._display_failed:
                self._display_failed = True
                log.warning("Runflow: could not update the node's progress display: %s", exc)

    def _raise_interrupt(self) -> None:
        if self._interrupt is not None:
            raise self._interrupt
        if self._mm is not None:
            self._mm.throw_exception_if_processing_interrupted()


def _dollars(amount: Decimal | None, *, emulator: bool) -> str:
    return "0.00" if emulator or amount is None else f"{amount:.2f}"


def status_payload(node_id: str, snapshot: TallySnapshot, *, final: bool) -> dict[str, Any]:
    """The `runflow.status` event the web extension listens to (see docs/ARCHITECTURE.md)."""
    return {
        "node": node_id,
        "text": snapshot.status_line(),
        "total": snapshot.total,
        "done": snapshot.done,
        "cached": snapshot.cached,
        "resumed": snapshot.resumed,
        "failed": snapshot.failed,
        "queued": snapshot.queued,
        "running": snapshot.running,
        "waiting": snapshot.waiting,
        "cost": _dollars(snapshot.cost, emulator=snapshot.emulator),
        "elapsed_s": round(snapshot.elapsed_s, 1),
        "emulator": snapshot.emulator,
        "final": final,
    }


# -- tensors <-> arrays ------------------------------------------------------------------------------


def tensor_to_arrays(image: torch.Tensor) -> list[np.ndarray]:
    """ComfyUI IMAGE [B, H, W, C] float 0..1 -> one uint8 HxWxC array per batch item.

    Each item goes through the library's own input checks (NaN, infinities, 0..255 floats, size), so
    a broken upstream node is refused here, before anything is uploaded or paid, as a script's array
    would be; only the overshoot a graph may clip is wider (images.GRAPH_FLOAT_TOLERANCE)."""
    if image.ndim != 4:
        raise InputRejected(f"Expected an IMAGE batch shaped [B, H, W, C], got shape {tuple(image.shape)}.")
    if image.shape[0] == 0:
        raise InputRejected("The image batch is empty: connect at least one image.")
    count = image.shape[0]
    # One item at a time: a whole-batch float copy of 16 2K images is 800 MB.
    return [
        images.to_array(
            item.to("cpu", torch.float32).numpy(),
            name=f"image {index + 1} of {count} (input 'image')",
            float_tolerance=images.GRAPH_FLOAT_TOLERANCE,
        )
        for index, item in enumerate(image.detach())
    ]


def assemble_outputs(
    results: Sequence[IsolationResult], color: tuple[int, int, int] | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image RGB, mask 1 = product, rgba) as float32 CPU batches.

    Results of different sizes (e.g. "auto" aspect over mixed photos) are letterboxed, centred, onto
    the largest width and height of the batch: padding is the background colour in `image` (black when
    transparent), 0 in `mask` and fully transparent in `rgba`.
    """
    height = max(result.image.height for result in results)
    width = max(result.image.width for result in results)
    count = len(results)
    rgb_out = np.zeros((count, height, width, 3), np.float32)
    if color is not None:
        rgb_out[:] = np.asarray(color, np.float32) / 255
    mask_out = np.zeros((count, height, width), np.float32)
    rgba_out = np.zeros((count, height, width, 4), np.float32)
    for index, result in enumerate(results):
        rgb, alpha = images.split_rgba(result.image)
        h, w = alpha.shape
        top, left = (height - h) // 2, (width - w) // 2
        window = (index, slice(top, top + h), slice(left, left + w))
        rgba = rgba_out[window]
        _to_unit(rgb, out=rgba[..., :3])
        rgba[..., 3] = alpha
        mask_out[window] = alpha
        if color is None:
            rgb_out[window] = rgba[..., :3]
        else:
            _to_unit(images.composite(rgb, alpha, color), out=rgb_out[window])
    return torch.from_numpy(rgb_out), torch.from_numpy(mask_out), torch.from_numpy(rgba_out)


def _to_unit(pixels: np.ndarray, *, out: np.ndarray) -> None:
    """uint8 -> float32 in 0..1 written straight into the batch: the same correctly rounded k/255 as
    `astype(np.float32) / 255`, without its two full-size float temporaries (192 MB per 4K image)."""
    np.divide(pixels, np.float32(255), out=out, dtype=np.float32)


# -- run facts -----------------------------------------------------------------------------------------


def run_info_lines(results: Sequence[IsolationResult], *, emulator: bool) -> list[dict[str, Any]]:
    """One record per image, in batch order. `cost` is what this execution was charged for the item:
    "0.00" for a cached result, for a repeat of an identical image earlier in the same batch (it shares
    that image's run) and in emulator mode."""
    charges = Charges(emulator=emulator)
    lines = []
    for index, result in enumerate(results):
        lines.append(
            {
                "index": index,
                "run_id": result.run_id,
                "output_url": strip_userinfo(result.output_url) if result.output_url else None,
                "cost": _dollars(charges.charge(result), emulator=emulator),
                "cached": result.cached,
                "resumed": result.resumed,
                "aspect_ratio": result.aspect_ratio,
                "resolution": result.resolution,
                "width": result.image.width,
                "height": result.image.height,
                "service": service.EMULATOR_SERVICE_ID if emulator else "runflow",
            }
        )
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


# -- inputs shared by the isolation nodes ------------------------------------------------------------


def _aspect_input(choices: Sequence[str], default: str, extra: str) -> tuple[list[str], dict[str, Any]]:
    return (
        list(choices),
        {
            "default": default,
            "tooltip": "Width:height of the output canvas; the model crops and frames the product to it. " + extra,
        },
    )


_RESOLUTION_INPUT = (
    list(RESOLUTIONS),
    {
        "default": "2K",
        "tooltip": "Long side of the output: 1K = 1024 px, 2K = 2048 px, 4K = 4096 px. "
        f"Same price for all: ${PRICE_PER_IMAGE} per image.",
    },
)

_OPTIONAL_INPUTS: dict[str, tuple[str, dict[str, Any]]] = {
    "prompt": (
        "STRING",
        {
            "multiline": True,
            "default": "",
            "tooltip": "Optional: what to isolate, in a short phrase (e.g. 'the left shoe'). "
            "Empty isolates the main product.",
        },
    ),
    "background": (
        "STRING",
        {
            "default": TRANSPARENT,
            "tooltip": "'transparent' keeps the model's RGB as returned in the `image` output (use `mask` or "
            "`rgba` for the cut-out). A colour ('#ffffff', '#fff', '255,255,255', white, black, gray) "
            "composites the `image` output onto it. `mask` and `rgba` are the same either way.",
        },
    ),
    "force_rerun": (
        "BOOLEAN",
        {
            "default": False,
            "tooltip": f"Pay for fresh runs (${PRICE_PER_IMAGE} each) even when identical results are "
            "cached. Off: an image already isolated with the same settings costs nothing.",
        },
    ),
    "spend_limit": (
        "FLOAT",
        {
            "default": 0.0,
            "min": 0.0,
            "max": 100000.0,
            "step": 1.0,
            "round": 0.01,
            "tooltip": "Most dollars one execution may spend on new runs; 0 = no limit. Checked before "
            "anything starts (cached and resumed images are free); over the limit, nothing runs. Applies "
            "at list price in emulator mode too, so you can try it for free.",
        },
    ),
    "concurrency": (
        "INT",
        {
            "default": 8,
            "min": 1,
            "max": 32,
            "tooltip": "How many images of a batch are in flight at Runflow at once.",
        },
    ),
}

_OUTPUT_TOOLTIPS = (
    "The isolated product, RGB (3 channels). background 'transparent': the model's RGB as returned; a "
    "colour: composited onto it. Results of different sizes are letterboxed, centred, to the batch's "
    "largest width and height (padding in the background colour, black when transparent).",
    "Product mask: 1 = product, 0 = background (alpha polarity, like ComfyUI's remove-background nodes). "
    "LoadImage's mask is the opposite: put InvertMask before JoinImageWithAlpha. Padding is 0.",
    "RGB + alpha (4 channels, alpha = mask): connect to Save Image for a transparent PNG. Many nodes "
    "expect 3 channels: use `image` for them. Padding is fully transparent.",
    "One JSON object per line, per image in batch order: index, run_id, output_url, cost (dollars charged "
    "by this execution; 0.00 when cached or in emulator mode), cached, resumed, aspect_ratio, resolution, "
    "width, height, service.",
)


class _IsolationNode:
    """What the two isolation nodes share: outputs, re-run rules and the execution itself."""

    RETURN_TYPES = ("IMAGE", "MASK", "IMAGE", "STRING")
    RETURN_NAMES = ("image", "mask", "rgba", "run_info")
    OUTPUT_TOOLTIPS = _OUTPUT_TOOLTIPS
    FUNCTION = "isolate"
    CATEGORY = CATEGORY

    @classmethod
    def IS_CHANGED(cls, force_rerun: bool = False, **_: Any) -> Any:  # noqa: N802 - ComfyUI's name
        """ComfyUI re-executes a node only when this value changes: always with force_rerun (NaN never
        equals itself), and when the service mode changes, so emulator results never stand in for real
        ones."""
        return float("nan") if force_rerun else service.current_mode()

    @classmethod
    def VALIDATE_INPUTS(cls, background: str = TRANSPARENT) -> bool | str:  # noqa: N802 - ComfyUI's name
        """Refuse a bad colour before the queue runs anything (a linked value is checked at execution)."""
        try:
            images.parse_color(background)
        except RunflowError as exc:
            return exc.message
        return True

    def _isolate(
        self,
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
    ) -> dict[str, Any]:
        color = images.parse_color(background)
        limit = spend_limit if spend_limit > 0 else None
        with client_factory(max_concurrency=concurrency, spend_limit=limit) as client:
            emulator = client.service_id == service.EMULATOR_SERVICE_ID
            feedback = _Feedback(len(items), unique_id, emulator=emulator)
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
            "cost": _dollars(sum((Decimal(line["cost"]) for line in info), Decimal(0)), emulator=emulator),
            "elapsed_s": round(feedback.tally.snapshot().elapsed_s, 1),
            "cached": sum(1 for result in results if result.cached),
            "emulator": emulator,
            # What this ComfyUI has spent at this service since it started (the ledger's session).
            "session_cost": _dollars(client.ledger.totals(client.service_id).session_cost, emulator=emulator),
        }
        run_info = "\n".join(json.dumps(line) for line in info)
        return {"ui": {"runflow": [summary]}, "result": (*assemble_outputs(results, color), run_info)}


_HIDDEN = {"unique_id": "UNIQUE_ID"}


class RunflowProductIsolation(_IsolationNode):
    DESCRIPTION = (
        f"Isolates the product in each photo with Runflow's hosted model (${PRICE_PER_IMAGE} per image), "
        "cropped and framed to an aspect ratio. Every image of a batch runs at once; results are cached, so "
        "the same image with the same settings is never paid for twice. Works offline and free in emulator "
        "mode. The API key is never a widget: set it in Settings > Runflow or RUNFLOW_API_KEY."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI's name
        return {
            "required": {
                "image": (
                    "IMAGE",
                    {"tooltip": "Product photo(s). Each image of a batch is its own run; results come back in order."},
                ),
                "aspect_ratio": _aspect_input(
                    (AUTO_ASPECT, *ASPECT_RATIOS),
                    AUTO_ASPECT,
                    "'auto' picks the ratio nearest to each photo's own.",
                ),
                "resolution": _RESOLUTION_INPUT,
            },
            "optional": dict(_OPTIONAL_INPUTS),
            "hidden": dict(_HIDDEN),
        }

    def isolate(
        self,
        image: torch.Tensor,
        aspect_ratio: str,
        resolution: str,
        prompt: str = "",
        background: str = TRANSPARENT,
        force_rerun: bool = False,
        spend_limit: float = 0.0,
        concurrency: int = 8,
        unique_id: str | None = None,
    ) -> dict[str, Any]:
        return self._isolate(
            tensor_to_arrays(image),
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            prompt=prompt,
            background=background,
            force_rerun=force_rerun,
            spend_limit=spend_limit,
            concurrency=concurrency,
            unique_id=unique_id,
        )


def parse_urls(text: str) -> list[ImageURL]:
    """One URL per non-empty line. Each is an ImageURL, so the engine only ever treats it as a URL
    (https, or http to the local emulator), never as a file on this server."""
    lines = [(number, line.strip()) for number, line in enumerate((text or "").splitlines(), 1) if line.strip()]
    if not lines:
        raise InputRejected("image_urls is empty: give one https image URL per line.")
    return [ImageURL(url, label=f"line {number} of image_urls") for number, url in lines]


class RunflowProductIsolationFromURL(_IsolationNode):
    DESCRIPTION = (
        "Like Runflow Product Isolation, for images already online: one https image URL per line, each "
        f"line a run (${PRICE_PER_IMAGE} per image). Each image is read once to key the cache by its "
        "pixels, so a re-signed URL of the same image costs nothing. Connect Runflow Stage Image's url "
        "output, or type URLs."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI's name
        return {
            "required": {
                "image_urls": (
                    "STRING",
                    {
                        "multiline": True,
                        "default": "",
                        "tooltip": "https image URL(s), one per line; each line is one image of the output batch.",
                    },
                ),
                "aspect_ratio": _aspect_input(
                    (*ASPECT_RATIOS, AUTO_ASPECT),
                    ASPECT_RATIOS[0],
                    "'auto' picks the ratio nearest to each image's own (each image is read once anyway).",
                ),
                "resolution": _RESOLUTION_INPUT,
            },
            "optional": dict(_OPTIONAL_INPUTS),
            "hidden": dict(_HIDDEN),
        }

    def isolate(
        self,
        image_urls: str,
        aspect_ratio: str,
        resolution: str,
        prompt: str = "",
        background: str = TRANSPARENT,
        force_rerun: bool = False,
        spend_limit: float = 0.0,
        concurrency: int = 8,
        unique_id: str | None = None,
    ) -> dict[str, Any]:
        return self._isolate(
            parse_urls(image_urls),
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            prompt=prompt,
            background=background,
            force_rerun=force_rerun,
            spend_limit=spend_limit,
            concurrency=concurrency,
            unique_id=unique_id,
        )


class RunflowStageImage:
    DESCRIPTION = (
        "Uploads each image of a batch to Runflow (free) and returns its hosted https URL, one per line, "
        "to pass to nodes that take image URLs. The URLs are signed and short-lived: use them in the same "
        "queue run."
    )
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("url",)
    OUTPUT_TOOLTIPS = ("Hosted https URL of each image, one per line in batch order (signed, short-lived).",)
    FUNCTION = "stage"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI's name
        return {
            "required": {"image": ("IMAGE", {"tooltip": "Image(s) to upload; each batch item gets its own URL."})},
            "optional": {
                "lossless": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Upload PNG instead of JPEG quality 95 (images with transparency are always PNG).",
                    },
                )
            },
            "hidden": dict(_HIDDEN),
        }

    def stage(self, image: torch.Tensor, lossless: bool = False, unique_id: str | None = None) -> tuple[str]:
        arrays = tensor_to_arrays(image)
        with client_factory() as client:
            feedback = _Feedback(len(arrays), unique_id, emulator=client.service_id == service.EMULATOR_SERVICE_ID)

            def stage_all() -> list[str]:
                staged = client.stage_many(
                    arrays, lossless=lossless, should_cancel=feedback.should_cancel, on_progress=feedback.on_progress
                )
                return [asset.url for asset in staged]

            return ("\n".join(feedback.run(stage_all)),)


NODE_CLASS_MAPPINGS = {
    "RunflowProductIsolation": RunflowProductIsolation,
    "RunflowProductIsolationFromURL": RunflowProductIsolationFromURL,
    "RunflowStageImage": RunflowStageImage,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "RunflowProductIsolation": "Runflow Product Isolation",
    "RunflowProductIsolationFromURL": "Runflow Product Isolation (URL)",
    "RunflowStageImage": "Runflow Stage Image",
}
