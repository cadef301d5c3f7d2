"""Before anything is paid: an input becomes a Job (pixels, resolved parameters, cache key), then an upload.

Bad input is refused here, at no cost: the only request is the download of a URL input, read once so its
cache key is its pixels. Uploads are encoded at most one per core at a time, process-wide.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from . import images, originals
from .assets import MAX_UPLOAD_BYTES, StagedAsset, check_upload_size, stage_bytes
from .cache import cache_key
from .cancel import CancelCheck
from .engine import Engine, Job
from .errors import InputRejected, RunflowError
from .http import Transport
from .product_isolation import IsolationParams
from .redact import url_for_display
from .result_types import ImageURL
from .service_address import is_loopback_url
from .url_policy import external_url_refusal

_ENCODE_EARLY_BYTES = 40 * 1024 * 1024
_ENCODE_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 2)


def _as_url(image: Any) -> str | None:
    """The URL an input names: an ImageURL always, a str only when it starts like one (a script's other
    strings are paths, which the caller meant)."""
    if isinstance(image, ImageURL):
        return image.url
    if isinstance(image, str) and image.strip().lower().startswith(("https://", "http://")):
        return image.strip()
    return None


def input_url_refusal(url: str, *, base_url: str) -> str | None:
    """Why an input URL is not used, or None. https only (http only to this machine, for the emulator);
    with the real service, no address of this machine or its network: the URL is downloaded here first."""
    if any(char.isspace() or ord(char) < 32 for char in url):
        return "it contains spaces or control characters"
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in ("https", "http"):
        return "it is not an https URL (file paths and other text are never read here)"
    if is_loopback_url(base_url) and not is_loopback_url(url):  # said for inputs; the policy below agrees
        return "the local emulator has no internet access and reads only URLs on this machine (Runflow Stage Image)"
    return external_url_refusal(url, base_url=base_url)


def _url_pixels(engine: Engine, url: str, name: str) -> np.ndarray:
    """Download an input URL once, so its cache key is its pixels: a re-signed URL of the same image, or
    a copy on another host, then costs nothing, and a CDN URL whose query selects another version or
    crop (`?v=2`, `?w=400`) is never mistaken for the old one."""
    shown = url_for_display(url)
    reason = input_url_refusal(url, base_url=engine.transport.base_url)
    if reason is not None:
        raise InputRejected(f"{name}: {shown!r} is refused: {reason}. Give one https image URL per line.")
    try:
        data = engine.transport.download(url, max_bytes=MAX_UPLOAD_BYTES, what=f"Reading {name} from {shown}")
    except RunflowError as exc:
        raise InputRejected(
            f"{name}: the image at {shown!r} could not be read ({exc.message}). Check that the URL opens "
            "in a browser and has not expired. Nothing was paid."
        ) from exc
    return images.to_array(data, name=name)


def prepare_job(
    image: Any, params: IsolationParams, *, index: int, engine: Engine, metadata: dict[str, str] | None = None,
) -> Job:
    """Validate one input and compute its cache key. Nothing is paid here: bad input costs nothing. The
    only request is the download of a URL input (to key it by its pixels)."""
    name = image.label if isinstance(image, ImageURL) and image.label else f"image {index}"
    url = _as_url(image)
    # A file already in a form the service reads as we do is uploaded as it is (originals.py).
    array, encoded = (_url_pixels(engine, url, name), None) if url is not None else originals.read(image, name=name)
    resolved = params.resolved_for(array.shape[1], array.shape[0])
    if url is None and encoded is None and array.nbytes > _ENCODE_EARLY_BYTES:
        # Big enough that the upload might pass 50 MiB: find out now, before any item of the batch pays.
        encoded = images.encode_for_upload(array, lossless=resolved.lossless)
        check_upload_size(len(encoded.data), what=name)
    key = cache_key(pixel_digest=images.pixel_digest(array), model=engine.model_id, service_id=engine.service_id,
                    options=resolved.key_fields())
    # A URL input is sent as its URL (the service fetches it): its pixels are not kept in memory.
    return Job(index, resolved, key, array if url is None else None, url, encoded, metadata)


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
