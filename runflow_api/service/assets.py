"""Staging an input image at Runflow: request an upload slot, PUT the bytes, confirm, get an https URL.

The model only takes an https `image_url`, so every local image goes through these three steps. A
presigned PUT URL can expire between steps 1 and 2 (a slow link, a long queue): that answers 403, and
the only cure is a new slot, so the three steps restart a bounded number of times.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from ..errors import InputRejected, ServiceUnavailable, SignedUrlExpired
from ..product_isolation import MAX_UPLOAD_BYTES
from .cancel import CancelCheck
from .http import Transport

_SLOT_ATTEMPTS = 3


@dataclass(frozen=True)
class StagedAsset:
    """An uploaded image: its id (to re-sign the URL later) and the short-lived https URL to pass on."""

    asset_id: str
    url: str


def check_upload_size(size: int, *, what: str = "The image") -> None:
    """Runflow refuses uploads over 50 MiB; say so before anything is sent."""
    if size <= 0:
        raise InputRejected(f"{what} encoded to 0 bytes; nothing to upload.")
    if size > MAX_UPLOAD_BYTES:
        raise InputRejected(
            f"{what} encodes to {size / 1048576:.1f} MiB, over Runflow's 50 MiB upload limit. "
            "Downscale it (the model renders at most 4096 px on the long side) or turn off lossless upload."
        )


def _required(body: object, key: str, what: str) -> str:
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise ServiceUnavailable(f"{what}: Runflow's answer has no {key!r}.", status_code=200)
    return value


def stage_bytes(
    transport: Transport,
    data: bytes,
    *,
    mime_type: str,
    filename: str,
    should_cancel: CancelCheck | None = None,
) -> StagedAsset:
    """Upload encoded image bytes and return the confirmed asset with its signed https URL."""
    check_upload_size(len(data))
    for attempt in range(1, _SLOT_ATTEMPTS + 1):
        slot = transport.api(
            "POST",
            "/v1/asset-uploads",
            json={"filename": filename, "mime_type": mime_type, "size_bytes": len(data)},
            what="Preparing the upload",
            should_cancel=should_cancel,
        )
        asset_id = _required(slot, "asset_id", "Preparing the upload")
        upload_url = _required(slot, "upload_url", "Preparing the upload")
        try:
            transport.put_bytes(upload_url, data, mime_type, should_cancel=should_cancel)
        except SignedUrlExpired:
            if attempt == _SLOT_ATTEMPTS:
                raise
            continue
        asset = transport.api(
            "POST",
            f"/v1/asset-uploads/{quote(asset_id, safe='')}/confirmations",
            json={"folder_id": None},
            what="Confirming the upload",
            should_cancel=should_cancel,
        )
        url = _required(asset, "url", "Confirming the upload")
        transport.check_external_url(url, what="Confirming the upload")
        return StagedAsset(asset_id=str(asset.get("id") or asset_id), url=url)
    raise AssertionError("unreachable: the loop either returns or raises")
