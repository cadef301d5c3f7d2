"""How the peer packs process a batch, reproduced for a fair side-by-side: one image at a time, PNG upload
at Pillow's default compression, a fixed 2-second poll, no connection reuse between images.

It speaks the same HTTP contract as our client (it has to, to run against the same emulator), but none of
our engine's choices: that is the point of the comparison.
"""

from __future__ import annotations

import io
import time

import numpy as np
import requests
from PIL import Image

POLL_INTERVAL_S = 2.0
TERMINAL = {"succeeded", "partial_succeeded", "failed", "canceled", "cancelled", "errored"}


def isolate_one(base_url: str, api_key: str, array: np.ndarray, aspect_ratio: str, resolution: str) -> Image.Image:
    auth = {"Authorization": f"Bearer {api_key}"}
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")  # Pillow's default compress_level (6)
    data = buffer.getvalue()
    slot = requests.post(f"{base_url}/v1/asset-uploads", headers=auth, timeout=60,
                         json={"filename": "input.png", "mime_type": "image/png", "size_bytes": len(data)}).json()
    requests.put(slot["upload_url"], data=data, headers={"Content-Type": "image/png"}, timeout=120).raise_for_status()
    asset = requests.post(f"{base_url}/v1/asset-uploads/{slot['asset_id']}/confirmations", headers=auth,
                          json={"folder_id": None}, timeout=60).json()
    run = requests.post(f"{base_url}/v1/models/runflow/product-isolation/runs", headers=auth, timeout=60,
                        json={"input": {"image_url": asset["url"], "aspect_ratio": aspect_ratio,
                                        "resolution": resolution}}).json()
    while run["status_code"] not in TERMINAL:
        time.sleep(POLL_INTERVAL_S)
        run = requests.get(f"{base_url}/v1/runs/{run['id']}", headers=auth, timeout=60).json()
    url = run["output"]["image_urls"][0]
    return Image.open(io.BytesIO(requests.get(url, timeout=120).content)).convert("RGBA")


def isolate_batch(base_url: str, api_key: str, arrays: list[np.ndarray], aspect_ratio: str,
                  resolution: str) -> list[Image.Image]:
    return [isolate_one(base_url, api_key, array, aspect_ratio, resolution) for array in arrays]
