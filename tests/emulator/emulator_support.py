"""Helpers shared by the emulator's tests: a thin `requests` client and synthetic photos.

These tests deliberately avoid the project's client (a separate module): they pin the HTTP contract
itself, with nothing in between.
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import requests
from PIL import Image

from runflow_api.emulator import Emulator

KEY = "rf_live_emulator_tests_01"
TERMINAL = {"succeeded", "partial_succeeded", "failed", "canceled", "cancelled", "errored"}


def red_square_png(size: tuple[int, int] = (160, 120), fmt: str = "PNG") -> bytes:
    """A grey photo with a red product square in the middle: easy to check an isolation against."""
    width, height = size
    pixels = np.full((height, width, 3), 128, np.uint8)
    pixels[height // 3 : 2 * height // 3, width // 3 : 2 * width // 3] = (220, 20, 20)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


class Client:
    """A thin `requests` wrapper: the emulator's base URL, the key, and the three-step upload."""

    def __init__(self, emulator: Emulator, key: str = KEY) -> None:
        self.emulator = emulator
        self.base = emulator.base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"
        self.verify: Any = True

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        kwargs.setdefault("verify", self.verify)
        return self.session.request(method, self.base + path, **kwargs)

    def put_bytes(self, url: str, data: bytes, content_type: str) -> requests.Response:
        """The presigned PUT, without the Authorization header, as a storage upload is sent."""
        return requests.put(url, data=data, headers={"Content-Type": content_type}, timeout=10, verify=self.verify)

    def stage(self, data: bytes | None = None, mime: str = "image/png") -> dict[str, Any]:
        data = red_square_png() if data is None else data
        slot = self.request(
            "POST", "/v1/asset-uploads", json={"filename": "photo", "mime_type": mime, "size_bytes": len(data)}
        )
        assert slot.status_code == 201, slot.text
        put = self.put_bytes(slot.json()["upload_url"], data, mime)
        assert put.status_code == 200, put.text
        confirmed = self.request(
            "POST", f"/v1/asset-uploads/{slot.json()['asset_id']}/confirmations", json={"folder_id": None}
        )
        assert confirmed.status_code == 201, confirmed.text
        return confirmed.json()

    def create(
        self, image_url: str, aspect_ratio: str = "1:1", resolution: str = "1K", **extra: Any
    ) -> requests.Response:
        headers = extra.pop("headers", {})
        body = {"input": {"image_url": image_url, "aspect_ratio": aspect_ratio, "resolution": resolution}}
        body.update(extra)
        return self.request("POST", "/v1/models/runflow/product-isolation/runs", json=body, headers=headers)

    def wait(self, run_id: str, limit: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            run = self.request("GET", f"/v1/runs/{run_id}").json()
            if run["status_code"] in TERMINAL:
                return run
            time.sleep(0.01)
        raise AssertionError(f"run {run_id} did not finish within {limit} s")

    def run_to_end(
        self, aspect_ratio: str = "1:1", resolution: str = "1K", data: bytes | None = None
    ) -> dict[str, Any]:
        asset = self.stage(data)
        created = self.create(asset["url"], aspect_ratio, resolution)
        assert created.status_code == 201, created.text
        return self.wait(created.json()["id"])
