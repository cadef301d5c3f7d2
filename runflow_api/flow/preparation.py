"""Before anything is paid: an input becomes a Job (pixels, resolved parameters, cache key), then an upload.

Bad input is refused here, at no cost: the only request is the download of a URL input, read once so its
cache key is its pixels. Uploads are encoded at most one per core at a time, process-wide.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import InputRejected, RunflowError
from ..fleet.shared_inputs import KnownPixels
from ..money.cache import cache_key
from ..pictures import images, originals
from ..pictures.result_types import ImageURL
from ..product_isolation import MAX_UPLOAD_BYTES, IsolationParams
from ..service.assets import check_upload_size
from ..service.url_policy import external_url_refusal, is_loopback_url
from ..settings.redact import url_for_display
from .shared_state import Engine, Job

_ENCODE_EARLY_BYTES = 40 * 1024 * 1024
_DECODE_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 2)


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


def input_pixels(engine: Engine, image: Any, name: str) -> np.ndarray:
    """An input's pixels as a job reads them: a URL downloaded under the same policy (free), anything else
    as `originals.read` decodes it (EXIF orientation applied). For what is made of a result afterwards,
    such as placing it on its photo (`placement.place_on_input`)."""
    url = _as_url(image)
    return _url_pixels(engine, url, name) if url is not None else images.to_array(image, name=name)


def prepare_job(
    image: Any, params: IsolationParams, *, index: int, engine: Engine, metadata: dict[str, str] | None = None,
    share_reads: bool = False,
) -> Job:
    """Validate one input and compute its cache key. Nothing is paid here: bad input costs nothing. The
    only request is the download of a URL input (to key it by its pixels).

    With `share_reads` (a caller that can set inputs aside, like `isolate_stream`) and a fleet, a file the
    fleet has read already is not decoded: its key comes from the pixel digest another machine left
    (`fleet.shared_inputs`), and the job has no pixels until `reload`. A file another machine is reading
    right now raises `ClaimHeld`."""
    name = image.label if isinstance(image, ImageURL) and image.label else f"image {index}"
    url = _as_url(image)
    if url is not None:  # sent as its URL (the service fetches it): its pixels are not kept in memory
        pixels = _url_pixels(engine, url, name)
        return _job(index, params, images.pixel_digest(pixels), _size(pixels), engine, metadata, url=url)
    data = originals.file_bytes(image) if share_reads and engine.fleet is not None else None
    if data is None or engine.fleet is None:
        # A file already in a form the service reads as we do is uploaded as it is (originals.py).
        array, encoded, digest = _read(image, params, name)
        return _job(index, params, digest, _size(array), engine, metadata, array=array, encoded=encoded)
    shared, file_digest = engine.fleet.inputs, hashlib.sha256(data).hexdigest()
    known = shared.look(file_digest)
    if known is not None:
        job = _job(index, params, known.digest, (known.width, known.height), engine, metadata)
    else:
        try:
            array, encoded, digest = _read(image, params, name, data)
        except BaseException:
            shared.forget(file_digest)
            raise
        shared.remember(file_digest, KnownPixels(digest, *_size(array)))
        job = _job(index, params, digest, _size(array), engine, metadata, array=array, encoded=encoded)
    return replace(job, reload=functools.partial(_reload, job, image, file_digest))


def _size(array: np.ndarray) -> tuple[int, int]:
    return array.shape[1], array.shape[0]


def _read(
    image: Any, params: IsolationParams, name: str, data: bytes | None = None
) -> tuple[np.ndarray, images.EncodedImage | None, str]:
    """(pixels, upload, pixel digest) of a non-URL input (`_decoded`), the digest hashed in the same slot."""
    with _DECODE_SLOTS:
        array, encoded = _decoded(image, params, name, data)
        return array, encoded, images.pixel_digest(array)


def _decoded(
    image: Any, params: IsolationParams, name: str, data: bytes | None = None
) -> tuple[np.ndarray, images.EncodedImage | None]:
    """(pixels, upload) of a non-URL input. A big image's upload is encoded now, to know it fits in 50 MiB
    before any item of the batch pays, and kept for staging.

    Callers hold one of `_DECODE_SLOTS`: at most one read per core at a time, process-wide, like encodes
    for upload (`staging.stage_array`).
    A stream's workers all reading at once (eight here, and on every machine of a fleet starting
    together) would finish together and late, and the first runs wait for the last read."""
    array, encoded = originals.read(image, name=name, data=data)
    if encoded is None and array.nbytes > _ENCODE_EARLY_BYTES:
        encoded = images.encode_for_upload(array, lossless=params.resolved_for(*_size(array)).lossless)
        check_upload_size(len(encoded.data), what=name)
    return array, encoded


def _job(
    index: int, params: IsolationParams, pixel_digest: str, size: tuple[int, int], engine: Engine,
    metadata: dict[str, str] | None, *, array: np.ndarray | None = None, encoded: images.EncodedImage | None = None,
    url: str | None = None,
) -> Job:
    """The job for pixels of this digest and (width, height): "auto" resolved from that shape."""
    resolved = params.resolved_for(*size)
    key = cache_key(pixel_digest=pixel_digest, model=engine.model_id, service_id=engine.service_id,
                    options=resolved.key_fields())
    return Job(index, resolved, key, array, url, encoded, metadata, input_size=size)


def _reload(job: Job, image: Any, file_digest: str) -> Job:
    """`job` with its pixels, read now that this process is to produce its result. The key stays the one
    the fleet agreed on (another machine's decoder may differ in a last bit) as long as the file's bytes
    are the ones it read; a file rewritten since is refused, before anything is paid for it."""
    name = f"image {job.index}"
    data = originals.file_bytes(image)
    if data is None or hashlib.sha256(data).hexdigest() != file_digest:
        raise InputRejected(f"{name}: {image} changed while the batch ran. Nothing was paid for it; run the "
                            "batch again to isolate the file as it is now.")
    with _DECODE_SLOTS:
        array, encoded = _decoded(image, job.params, name, data)
    return replace(job, array=array, encoded=encoded)
