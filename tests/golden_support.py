"""What the golden money tests and the rendering-option guards share: the golden values recorded from
0.1.0 (`fixtures/money_golden.json`), the deterministic photo they were recorded with, what each kind of
change would cost users, and a small recording service that keeps the exact bytes of each create.
Its fixtures reach every test module through `pytest_plugins` in conftest.py.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from support import EMULATOR_KEY

from runflow_api import ImageURL, RunflowClient, __version__
from runflow_api.emulator import Emulator

FIXTURE = Path(__file__).parent / "fixtures" / "money_golden.json"
GOLDEN: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
SERVICE_ID = "golden-service"  # fixed, so the keys do not depend on the emulator's port
JOURNAL_ID = "0123456789ab"  # fixed, so the Idempotency-Key is reproducible
IMAGE_URL_MARK = "{image_url}"

COST_OF_A_KEY_CHANGE = (
    "The cache key for existing settings changed. Every user's cached results would miss and be paid again "
    "at $0.27 per image, and journaled runs (paid, not yet collected) would be orphaned. Keep the key for "
    "existing settings byte-identical (a new option must contribute nothing at its default); never "
    "re-record this fixture to make a change pass. See docs/CHANGING.md."
)
COST_OF_A_BODY_CHANGE = (
    "The create request body for existing settings changed. A journaled create replayed with its "
    "Idempotency-Key would be answered 409 (or billed twice where keys are not honoured), and fleets "
    "running mixed versions would send the same key with different bodies. Keep the body byte-identical "
    "(a new option must be left out of the input at its default). See docs/CHANGING.md."
)
COST_OF_AN_IDEMPOTENCY_CHANGE = (
    "The Idempotency-Key derivation changed. A create whose answer was lost would be replayed under a new "
    "key after an upgrade and billed twice ($0.27 each). See docs/CHANGING.md."
)


def golden_photo(height: int = 90, width: int = 160) -> np.ndarray:
    """A deterministic RGB image (no random numbers, so every machine and numpy version agrees)."""
    yy, xx = np.mgrid[0:height, 0:width]
    channels = ((xx * 7 + yy * 3) % 256, (xx * xx + yy * 11) % 256, (yy * 5 + xx) % 256)
    return np.stack(channels, axis=2).astype(np.uint8)


def png_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


class RecordingService:
    """A real HTTP server on loopback standing in for Runflow with the least it takes for one run: it
    serves the input image, records each create's raw body and headers, answers it as already
    succeeded, and serves the output. It exists to see the exact bytes the client sends."""

    def __init__(self, image: bytes) -> None:
        self.creates: list[tuple[dict[str, str], bytes]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path in ("/in.png", "/out.png"):
                    self._send(200, image, "image/png")
                else:
                    self._send(404, b'{"detail": "not found"}', "application/json")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                service.creates.append((dict(self.headers.items()), body))
                answer = {"id": f"run_golden_{len(service.creates)}", "status": "succeeded", "cost": "0.27",
                          "output": {"image": f"{service.base_url}/out.png"}}
                self._send(201, json.dumps(answer).encode(), "application/json")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def recording_service() -> Iterator[RecordingService]:
    service = RecordingService(png_bytes(golden_photo()))
    yield service
    service.close()


@pytest.fixture
def recording_client(recording_service: RecordingService, tmp_path: Path) -> Iterator[RunflowClient]:
    """A client whose journal id is fixed, so the Idempotency-Keys it sends are reproducible."""
    (tmp_path / "data" / "journal").mkdir(parents=True)
    (tmp_path / "data" / "journal" / "journal-id").write_text(JOURNAL_ID, encoding="ascii")
    client = RunflowClient(EMULATOR_KEY, recording_service.base_url, service_id=SERVICE_ID, callbacks=False,
                           cache_dir=tmp_path / "cache", data_dir=tmp_path / "data")
    yield client
    client.close()


@pytest.fixture
def golden_client(emu: Emulator, client_for: Callable[..., RunflowClient]) -> RunflowClient:
    return client_for(emu, service_id=SERVICE_ID, callbacks=False)


def create_sent(service: RecordingService, client: RunflowClient, **options: Any) -> tuple[str, str, str]:
    """(body with the input URL marked, Idempotency-Key, cache key) of the one create an isolate sends."""
    url = f"{service.base_url}/in.png"
    result = client.isolate(ImageURL(url), **options)
    assert len(service.creates) == 1, "exactly one create is expected per isolate"
    headers, body = service.creates[0]
    text = body.decode("utf-8")
    assert url in text, "the create must name the input URL"
    return text.replace(url, IMAGE_URL_MARK), headers["Idempotency-Key"], result.cache_key


def golden_body(name: str) -> str:
    """A recorded body with this version's number in place of `{pack_version}`: the metadata names the
    pack's version, which changes by design and only in new creates (journaled ones replay as stored)."""
    return str(GOLDEN[name]["body"]).replace("{pack_version}", __version__)


