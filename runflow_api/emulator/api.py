"""What each route does, as docs/RUNFLOW-API.md describes it; HTTP plumbing and faults live in server.py.

Every method takes a parsed `Request` and returns a `Reply` or raises `Problem`. The emulator has no
internet: a run can only read images this emulator served itself (an asset or an output URL it signed);
any other URL is accepted at creation, like the real service would, and the run then fails with
`INPUT_FETCH_FAILED`, as the real one does when it cannot fetch the image.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ..product_isolation import MODEL_ID, canvas_size
from . import model
from .callbacks import CallbackSender
from .faults import Faults
from .lifecycle import OUTCOME_FAILURES, Failure, RunRecord
from .signing import UrlSigner, Verdict
from .state import Asset, EmulatorState, asset_file_key, output_file_id, output_file_key, uuid7
from .validation import check_asset_upload, check_run_create
from .views import Problem, Reply, balance_object, iso, json_reply, me_object

FILE_PATH = re.compile(r"/files/([^/]+)")


@dataclass(frozen=True)
class Request:
    """The parts of an HTTP request a route needs."""

    params: Mapping[str, str]  # path parameters, percent-decoded
    query: str
    headers: Message
    body: bytes

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; an empty body is an empty object (its fields are then "required")."""
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Problem(400, f"The request body is not valid JSON ({exc}).", code="INVALID_JSON") from exc
        if not isinstance(value, dict):
            raise Problem(
                422,
                "The request body should be a JSON object.",
                errors=[{"loc": ["body"], "msg": "Input should be a valid dictionary"}],
            )
        return value


def _fetch_failure(message: str) -> Failure:
    return Failure("INPUT_FETCH_FAILED", message, "input_fetch")


class Api:
    """The route handlers, sharing the emulator's state, URL signer and live settings."""

    def __init__(self, *, state: EmulatorState, api_key: str, latency: float, cheap: bool, faults: Faults) -> None:
        self.state = state
        self.signer = UrlSigner()
        self.latency = latency
        self.cheap = cheap
        self.faults = faults
        self.base_url = ""  # set by the server once the port is bound
        self.callbacks: CallbackSender | None = None  # set by Emulator when it has a callback secret
        self._expected_auth = f"Bearer {api_key}".encode()

    # -- shared helpers ---------------------------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        """Constant-time comparison, so the key cannot be guessed from answer timings."""
        return header is not None and hmac.compare_digest(header.encode(), self._expected_auth)

    def _signed(self, path: str, purpose: str, file_id: str, ttl: float) -> str:
        return f"{self.base_url}{path}{quote(file_id, safe='')}?{self.signer.sign(purpose, file_id, ttl)}"

    def _download_url(self, file_id: str) -> str:
        """Asset and output URLs share one TTL, Faults.output_url_ttl, read at the moment of signing."""
        return self._signed("/files/", "get", file_id, self.faults.output_url_ttl)

    def _asset_json(self, asset: Asset) -> dict[str, Any]:
        url = self._download_url(asset.id)
        return {
            "id": asset.id,
            "name": asset.name,
            "url": url,
            "thumbnail_url": url,  # the stand-in renders no thumbnails: the original serves as one
            "mime_type": asset.mime_type,
            "size_bytes": asset.size_bytes,
            "created_at": iso(asset.created_at_unix),
            "folder_id": None,
        }

    def output_bytes(self, run: RunRecord, number: int = 1) -> bytes:
        """Image `number` of the run's result, computed once on first demand (per-run lock) and kept in
        the byte store; later images of a multi-image run are variants of the first."""
        if self.cheap:
            return model.output_variant(model.flat_canvas(run.canvas), number)
        key = output_file_key(run.id, number)
        with run.output_lock:
            data = self.state.files.get(key)
            if data is None:
                try:
                    data = model.isolate(self._source_bytes(run), run.canvas)
                except model.ModelInputError as exc:  # a valid header over damaged pixel data
                    raise Problem(
                        500,
                        f"The result of run {run.id} could not be rendered: {exc.message}",
                        code="OUTPUT_FAILED",
                    ) from exc
                data = model.output_variant(data, number)
                self.state.files.put(key, data, recomputable=True)
        return data

    def output_urls(self, run: RunRecord, now: float) -> list[str]:
        """Freshly signed URLs of every image of a finished, successful run; none before it ends."""
        if not run.is_done_with_result(now):
            return []
        return [self._download_url(output_file_id(run.id, n)) for n in range(1, run.output_count + 1)]

    def _source_bytes(self, run: RunRecord) -> bytes:
        assert run.source_id is not None, "runs without a fetchable input never end with a result"
        return self._file(run.source_id)[0]

    def _file(self, file_id: str) -> tuple[bytes, str]:
        """Bytes and content type behind a signed file URL: an asset's upload, or a finished run's PNG."""
        asset = self.state.assets.get(file_id)
        if asset is None:
            run_id, _, number = file_id.partition(".")
            run = self.state.get_run(run_id)
            if number and (not number.isdigit() or not 2 <= int(number) <= run.output_count):
                raise Problem(404, f"Run {run_id} has no output {number}.", code="FILE_NOT_FOUND")
            return self.output_bytes(run, int(number or 1)), "image/png"
        data = self.state.files.get(asset_file_key(file_id))
        if data is None:
            raise Problem(404, f"File {file_id} is no longer stored.", code="FILE_EXPIRED")
        return data, asset.mime_type

    def _fetch_input(self, image_url: str) -> tuple[str | None, Failure | None]:
        """Which stored file the run reads, or why it cannot read one; decided once, at creation."""
        parts = urlsplit(image_url)
        match = FILE_PATH.fullmatch(parts.path)
        file_id = unquote(match.group(1)) if match else ""
        verdict = self.signer.check("get", file_id, parts.query) if match else Verdict.INVALID
        if verdict is Verdict.INVALID:
            return None, _fetch_failure(
                f"Could not fetch the image from {parts.netloc}: the emulator has no internet access and "
                "reads only the signed URLs it issued (upload the image as an asset first)."
            )
        if verdict is Verdict.EXPIRED:
            return None, _fetch_failure(
                "The image_url expired before the run could fetch it; read the asset again "
                "(GET /v1/assets/{id}) for a fresh URL and create the run right away."
            )
        if file_id in self.state.assets:
            data = self.state.files.get(asset_file_key(file_id))
            if data is None:
                return None, _fetch_failure("The image behind image_url is no longer stored; upload it again.")
            if not self.cheap:  # cheap mode never looks at pixels, so benchmarks may upload any bytes
                try:
                    model.probe(data)
                except model.ModelInputError as exc:
                    return None, Failure(exc.code, exc.message, "preprocessing")
        return file_id, None

    # -- asset upload: slot, presigned PUT, confirmation, re-read ---------------------------------------

    def asset_upload(self, request: Request) -> Reply:
        body = request.json()
        errors = check_asset_upload(body)
        if errors:
            raise Problem(422, "The upload request failed validation.", errors=errors)
        asset = Asset(
            id=uuid7(),
            name=body["filename"],
            mime_type=body["mime_type"],
            size_bytes=body["size_bytes"],
            created_at_unix=time.time(),
        )
        self.state.add_asset(asset)
        upload_url = self._signed("/uploads/", "put", asset.id, self.faults.upload_url_ttl)
        return json_reply(201, {"asset_id": asset.id, "upload_url": upload_url})

    def put(self, request: Request) -> Reply:
        """The storage side: no Authorization; the signature is the credential."""
        asset_id = request.params["id"]
        self._require_signature("put", asset_id, request, "The upload URL has expired; request a new one.")
        asset = self.state.asset(asset_id)
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != asset.mime_type:
            raise Problem(
                400,
                f"Content-Type {content_type or '(none)'!r} differs from the declared {asset.mime_type!r}.",
                code="CONTENT_TYPE_MISMATCH",
            )
        if len(request.body) != asset.size_bytes:
            raise Problem(
                400,
                f"The body is {len(request.body)} bytes; {asset.size_bytes} were declared.",
                code="SIZE_MISMATCH",
            )
        self.state.store_upload(asset, request.body)
        return Reply(200)

    def _require_signature(self, action: str, resource_id: str, request: Request, expired: str) -> None:
        """Presigned URLs carry their own credential: a bad or expired signature is a 403, as at Runflow."""
        verdict = self.signer.check(action, resource_id, request.query)
        if verdict is Verdict.INVALID:
            raise Problem(403, "The URL's signature does not match.", code="URL_SIGNATURE_INVALID")
        if verdict is Verdict.EXPIRED:
            raise Problem(403, expired, code="URL_EXPIRED")

    def confirm(self, request: Request) -> Reply:
        body = request.json()
        if body.get("folder_id") is not None:
            raise Problem(404, "The emulator has no folders; send folder_id null.", code="FOLDER_NOT_FOUND")
        return json_reply(201, self._asset_json(self.state.confirm(request.params["id"])))

    def asset(self, request: Request) -> Reply:
        return json_reply(200, self._asset_json(self.state.confirmed_asset(request.params["id"])))

    def download(self, request: Request) -> Reply:
        """Serve a signed file: an asset's bytes, or a finished run's PNG."""
        file_id = request.params["id"]
        self._require_signature(
            "get", file_id, request, "The URL has expired; read the run or asset again for a fresh one."
        )
        data, content_type = self._file(file_id)
        self.state.count("downloads")
        return Reply(200, data, content_type)

    # -- runs -------------------------------------------------------------------------------------------

    def create(self, request: Request) -> Reply:
        model_id = request.params["model"]
        if model_id != MODEL_ID:
            raise Problem(
                404,
                f"No model {model_id!r} is available here; the emulator serves {MODEL_ID}.",
                code="MODEL_NOT_FOUND",
            )
        body = request.json()
        errors = check_run_create(body, urlsplit(self.base_url).netloc)
        if errors:
            raise Problem(422, "The run request failed validation.", errors=errors)
        key = (request.headers.get("Idempotency-Key") or None) if self.faults.honour_idempotency else None
        fingerprint = hashlib.sha256(json.dumps([model_id, body], sort_keys=True).encode()).hexdigest()
        return self.state.idempotent(key, fingerprint, lambda: self._new_run(body))

    def _new_run(self, body: dict[str, Any]) -> Reply:
        now, run_input = time.monotonic(), body["input"]
        source_id, failure = self._fetch_input(run_input["image_url"])
        terminal = self.faults.terminal_status()
        if failure is None:
            failure = OUTCOME_FAILURES.get(terminal)
        else:
            terminal = "failed"
        run = RunRecord(
            id=uuid7(),
            model=MODEL_ID,
            input=run_input,
            metadata=body.get("metadata"),
            client_ref=body.get("client_ref"),
            callback_url=body.get("callback_url"),
            created_at_monotonic=now,
            created_at_unix=time.time(),
            latency=self.latency,
            terminal_status=terminal,
            failure=failure,
            source_id=source_id,
            canvas=canvas_size(run_input["aspect_ratio"], run_input["resolution"]),
            output_count=self.faults.output_count,
        )
        self.state.add_run(run)
        if run.callback_url and self.callbacks is not None:
            self.callbacks.schedule(run)
        payload = self.run_json(run, now)
        if self.faults.run_id_format is not None:
            payload["id"] = self.faults.run_id_format.replace("{id}", run.id)
        return json_reply(self.faults.create_status, payload)

    def run_json(self, run: RunRecord, now: float) -> dict[str, Any]:
        """The run object as of `now` (fresh output URLs once done), with the `cost_value` fault applied
        to a finished, billed run. Polls and callbacks both send this."""
        payload = run.to_json(now, output_urls=self.output_urls(run, now), output_shape=self.faults.output_shape)
        if self.faults.cost_value is not None and run.is_done_with_result(now):
            payload["cost"] = self.faults.cost_value
        return payload

    def poll(self, request: Request) -> Reply:
        run = self.state.get_run(request.params["id"])
        self.state.count_poll(run)
        return json_reply(200, self.run_json(run, time.monotonic()))

    # -- account ----------------------------------------------------------------------------------------

    def me(self, request: Request) -> Reply:
        return json_reply(200, me_object())

    def balance(self, request: Request) -> Reply:
        cents = self.state.balance_cents()
        return json_reply(200, balance_object(cents, self.state.low_balance_threshold_cents, self.faults.balance_shape))

    def health(self, request: Request) -> Reply:
        return json_reply(200, {"ok": True})
