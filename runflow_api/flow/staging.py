"""Staging images at Runflow for free: one, or a batch in parallel, each as a short-lived https URL.

What the Stage Image node and `RunflowClient.stage`/`stage_many` do. A file the service reads as we do
is uploaded as it is (`originals.py`); anything else is encoded (`stage_array`). A paid run's input is
uploaded the same way (`paid_runs`), once a run is to be bought: a cached or resumed input is never encoded.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any

import numpy as np

from ..errors import InputRejected, RunflowCancelled
from ..pictures import images, originals
from ..pictures.result_types import ProgressCallback, ProgressEvent
from ..service.assets import StagedAsset, stage_bytes
from ..service.cancel import CANCEL_TICK_S, CancelCheck
from ..service.http import Transport


def stage_many(
    transport: Transport,
    images_in: Sequence[Any],
    *,
    max_concurrency: int,
    lossless: bool = False,
    should_cancel: CancelCheck | None = None,
    on_progress: ProgressCallback | None = None,
) -> list[StagedAsset]:
    """Upload a batch, up to `max_concurrency` at once; the assets in input order.

    Uploads are free and mostly waiting on the network, so one after another wastes the batch's
    time. `should_cancel` is polled on the calling thread every 50 ms (ComfyUI's hooks must run on
    it) and `on_progress` gets a "done" event there as each upload finishes; the uploads themselves
    see a private flag. The first error (or a Cancel) stops the rest and is raised."""
    if isinstance(images_in, (str, bytes)) or not isinstance(images_in, Sequence):
        raise InputRejected("images must be a list of images; for a single image use stage().")
    if should_cancel is not None and should_cancel():
        raise RunflowCancelled("Cancelled before anything was staged.")
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, min(len(images_in), max_concurrency)),
                              thread_name_prefix="runflow-stage")
    pending = {
        pool.submit(stage_one, transport, image, f"image {index}", lossless, stop.is_set): index
        for index, image in enumerate(images_in)
    }
    staged: dict[int, StagedAsset] = {}
    try:
        while pending:
            done, _ = wait(pending, timeout=CANCEL_TICK_S, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                staged[index] = future.result()
                if on_progress is not None:
                    on_progress(ProgressEvent("done", index))
            if pending and should_cancel is not None and should_cancel():
                raise RunflowCancelled(
                    f"Cancelled after staging {len(staged)} of {len(images_in)} image(s). Uploads cost nothing."
                )
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
    return [staged[index] for index in range(len(images_in))]

def stage_one(
    transport: Transport, image: Any, name: str, lossless: bool, should_cancel: CancelCheck | None
) -> StagedAsset:
    """A file in a form the service reads as we do goes as it is (originals.py); the rest is encoded."""
    array, original = originals.read(image, name=name)
    return stage_array(transport, array, lossless=lossless, encoded=original, should_cancel=should_cancel)


_ENCODE_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 2)


def stage_array(
    transport: Transport,
    array: np.ndarray,
    *,
    lossless: bool,
    encoded: images.EncodedImage | None = None,
    should_cancel: CancelCheck | None = None,
) -> StagedAsset:
    """Encode (JPEG q95 for opaque photos, PNG with alpha or on request) and upload.

    At most one encode per core runs at a time (process-wide): sixteen encodes started together all
    finish late, so every run of a batch was created late and all ended at once, piling their downloads
    into the batch's tail. One per core, the first runs start at once and the rest follow in step."""
    if encoded is None:
        with _ENCODE_SLOTS:
            encoded = images.encode_for_upload(array, lossless=lossless)
    return stage_bytes(
        transport, encoded.data, mime_type=encoded.mime_type, filename=encoded.filename, should_cancel=should_cancel
    )
