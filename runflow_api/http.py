"""The one place that talks HTTP: session and pool, timeouts, retries, error bodies, guarded downloads.

Everything above this module deals in typed errors and parsed JSON, never in `requests` objects, so a
retry rule or an error message is written once. Retries follow Runflow's documented backoff (1 s
doubling to 32 s, plus up to 1 s of jitter, bounded attempts) and honour `Retry-After`. A create is only
ever retried with its Idempotency-Key, which the caller passes in and which stays the same across
attempts. Every sleep is cancellable, so a user's Cancel is never stuck behind a backoff.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from . import __version__
from .config import is_loopback_url, mask_key, url_for_log
from .errors import (
    APIError,
    InputRejected,
    NetworkError,
    OutputRejected,
    PermissionDenied,
    RateLimited,
    RunflowCancelled,
    RunflowError,
    RunflowTimeout,
    ServiceUnavailable,
    SignedUrlExpired,
    error_class_for_status,
)

log = logging.getLogger("runflow_api")

CancelCheck = Callable[[], bool]
_CANCEL_TICK_S = 0.05
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Timeouts:
    """Per-request limits; the overall wait for a run lives in `runs.PollPolicy`."""

    connect: float = 10.0
    read: float = 60.0
    upload_min: float = 120.0
    upload_bytes_per_s: float = 256 * 1024
    download: float = 120.0

    def for_upload(self, size: int) -> tuple[float, float]:
        """The SDK's rule: the larger of 120 s and the time to send the bytes at 256 KiB/s."""
        return self.connect, max(self.upload_min, size / self.upload_bytes_per_s)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff per Runflow's docs: base doubling to a ceiling, plus jitter, at most `attempts` tries."""

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 32.0
    jitter: float = 1.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before try number `attempt + 1` (attempt counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        backoff = min(self.base_delay * (2 ** (attempt - 1)), self.max_delay)
        return backoff + rng.uniform(0, self.jitter)


def cancellable_sleep(seconds: float, should_cancel: CancelCheck | None) -> None:
    """Sleep, waking every 50 ms to honour a cancel so the caller is never stuck behind a backoff."""
    deadline = time.monotonic() + seconds
    while True:
        if should_cancel is not None and should_cancel():
            raise RunflowCancelled("Cancelled while waiting.")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(_CANCEL_TICK_S, remaining))


def _retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None  # an HTTP date: rare enough here that the normal backoff is a fine answer


def _error_fields(body: Any) -> tuple[str | None, str | None, list[tuple[str, str]]]:
    """Code, message and per-field details from either envelope Runflow is known to send."""
    if not isinstance(body, dict):
        return None, None, []
    nested = body.get("error")
    source = nested if isinstance(nested, dict) else body
    code = source.get("code") if isinstance(source.get("code"), str) else None
    message = source.get("message") if isinstance(source.get("message"), str) else None
    details = []
    for item in body.get("errors") or source.get("errors") or []:
        if isinstance(item, dict):
            loc = item.get("loc")
            where = ".".join(str(part) for part in loc if part not in ("body",)) if isinstance(loc, list) else "?"
            details.append((where, str(item.get("msg", ""))))
    return code, message, details


_ADVICE: dict[int, str] = {
    400: "Check the inputs; this request will not succeed if repeated as is.",
    402: "Your Runflow balance is used up: top it up in the Runflow dashboard, then run again. "
    "Failed runs are not billed.",
    404: "It may have expired or belong to another key.",
    409: "The same Idempotency-Key was sent with a different request; this is a client bug, please report it.",
    422: "Fix the fields listed above and run again.",
    429: "Runflow is rate-limiting this key: lower the concurrency or try again in a minute.",
}


def _advice(status: int, code: str | None, api_key: str) -> str:
    if status == 401:
        return (
            f"The API key {mask_key(api_key)} was refused: check that it is current, then set it again "
            "(RUNFLOW_API_KEY, or Settings > Runflow > API key in ComfyUI)."
        )
    if status == 403:
        if code == "EMAIL_NOT_VERIFIED":
            return "Verify the e-mail address of your Runflow account, then run again."
        return "The key lacks a permission this needs (runs:create, runs:read, assets:create); create a key with them."
    if status >= 500:
        return "Runflow or the model is temporarily unavailable; the request was retried. Try again in a few minutes."
    return _ADVICE.get(status, "")


def error_from_response(response: requests.Response, *, what: str, api_key: str) -> APIError:
    """Turn an error answer into the typed exception whose message tells the user what to do."""
    try:
        body = response.json()
    except ValueError:
        body = None
    code, message, details = _error_fields(body)
    status = response.status_code
    text = f"{what} failed: Runflow answered {status}"
    if code:
        text += f" {code}"
    if message:
        text += f": {message.rstrip('.')}"
    text += "."
    if details:
        text += " " + "; ".join(f"{loc}: {msg}" for loc, msg in details) + "."
    advice = _advice(status, code, api_key)
    if advice:
        text += " " + advice
    cls = error_class_for_status(status)
    if cls is RateLimited:
        return RateLimited(
            text, retry_after=_retry_after_seconds(response), status_code=status, code=code, details=details
        )
    return cls(text, status_code=status, code=code, details=details)


_URL_IN_TEXT = re.compile(r"(url: |https?://)\S+")


def _network_reason(exc: BaseException) -> str:
    """A short cause without URLs: urllib3's texts embed presigned URLs, which are credentials too."""
    text = str(exc)
    lowered = text.lower()
    for needle, reason in (
        ("certificate", "the TLS certificate could not be verified"),
        ("ssl", "the TLS handshake failed"),
        ("name or service not known", "the host name could not be resolved (DNS)"),
        ("nodename nor servname", "the host name could not be resolved (DNS)"),
        ("temporary failure in name resolution", "the host name could not be resolved (DNS)"),
        ("connection refused", "the connection was refused"),
        ("connection reset", "the connection was reset"),
        ("remote end closed", "the server closed the connection without answering"),
        ("connection aborted", "the connection was aborted"),
    ):
        if needle in lowered:
            return reason
    return _URL_IN_TEXT.sub("", text)[:200] or type(exc).__name__


class Transport:
    """A pooled HTTP session bound to one service and key. Thread-safe: batch workers share one."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        pool_size: int = 16,
        allow_insecure: bool = False,
        verify: bool | str = True,
        seed: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.allow_insecure = allow_insecure or is_loopback_url(self.base_url)
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        # Passed on every request: requests lets REQUESTS_CA_BUNDLE override a Session-level setting.
        self._verify = verify
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = f"runflow-comfyui/{__version__}"
        self.session.headers.pop("Authorization", None)

    def __repr__(self) -> str:
        return f"Transport({self.base_url!r}, key={mask_key(self._api_key)})"

    def close(self) -> None:
        self.session.close()

    # -- the retry loop shared by every kind of request --------------------------------------------

    def _with_retries(
        self,
        send: Callable[[], requests.Response],
        *,
        what: str,
        should_cancel: CancelCheck | None,
        accept: Callable[[requests.Response], bool] = lambda r: 200 <= r.status_code < 300,
    ) -> requests.Response:
        attempt = 0
        while True:
            attempt += 1
            if should_cancel is not None and should_cancel():
                raise RunflowCancelled(f"Cancelled before {what}.")
            retry_after: float | None = None
            try:
                response = send()
            except requests.Timeout as exc:
                failure: RunflowError = RunflowTimeout(
                    f"{what} timed out ({_network_reason(exc)}). Runflow may be slow or your connection "
                    "unstable; try again, or raise the timeout."
                )
            except requests.ConnectionError as exc:
                failure = NetworkError(
                    f"{what} failed: could not reach {url_for_log(self.base_url)}: {_network_reason(exc)}. "
                    "Check your internet connection, proxy or firewall, and RUNFLOW_API_BASE."
                )
                if "tls" in failure.message.lower():
                    raise failure from exc  # a certificate problem will not fix itself on retry
            else:
                if accept(response):
                    return response
                failure = error_from_response(response, what=what, api_key=self._api_key)
                if response.status_code not in _RETRYABLE_STATUS:
                    raise failure
                if isinstance(failure, RateLimited):
                    retry_after = failure.retry_after
            if attempt >= self.retry.attempts:
                failure.extend(f"Gave up after {attempt} attempts.")
                raise failure
            with self._rng_lock:
                delay = self.retry.delay(attempt, retry_after, self._rng)
            log.info("%s: %s; retrying in %.1f s (attempt %d/%d)", what, failure.message, delay, attempt,
                     self.retry.attempts)
            cancellable_sleep(delay, should_cancel)

    # -- the three kinds of request ----------------------------------------------------------------

    def api(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        what: str,
        idempotency_key: str | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> Any:
        """An authenticated call to `/v1/...`; returns the parsed JSON body of any 2xx answer."""
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        url = f"{self.base_url}{path}"
        timeout = (self.timeouts.connect, self.timeouts.read)

        def send() -> requests.Response:
            return self.session.request(
                method, url, json=json, headers=headers, timeout=timeout, verify=self._verify
            )

        response = self._with_retries(send, what=what, should_cancel=should_cancel)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise ServiceUnavailable(
                f"{what}: Runflow answered {response.status_code} with a body that is not JSON. "
                "Check RUNFLOW_API_BASE points at the Runflow API.",
                status_code=response.status_code,
            ) from exc

    def check_external_url(self, url: str, *, what: str) -> None:
        """Presigned URLs come from the service; refuse plain http unless we are on loopback/test mode."""
        if url.startswith("https://"):
            return
        if url.startswith("http://") and (self.allow_insecure or is_loopback_url(url)):
            return
        raise InputRejected(
            f"{what}: refusing the non-https URL {url_for_log(url)!r}. Only https URLs are used outside "
            "the local emulator."
        )

    def put_bytes(
        self, url: str, data: bytes, content_type: str, *, should_cancel: CancelCheck | None = None
    ) -> None:
        """Upload to a presigned storage URL: no Authorization header, it is another host's credential."""
        self.check_external_url(url, what="Uploading the image")
        timeout = self.timeouts.for_upload(len(data))

        def send() -> requests.Response:
            return self.session.put(
                url, data=data, headers={"Content-Type": content_type}, timeout=timeout, verify=self._verify
            )

        try:
            self._with_retries(send, what="Uploading the image", should_cancel=should_cancel)
        except PermissionDenied as exc:
            raise SignedUrlExpired(
                "The upload URL expired before the image was sent.", status_code=403, code="URL_EXPIRED"
            ) from exc

    def download(
        self,
        url: str,
        *,
        max_bytes: int,
        what: str,
        should_cancel: CancelCheck | None = None,
    ) -> bytes:
        """Fetch a result image: streamed, capped, content-type checked. 403 means the URL expired."""
        self.check_external_url(url, what=what)
        timeout = (self.timeouts.connect, self.timeouts.download)

        def send() -> requests.Response:
            return self.session.get(url, stream=True, timeout=timeout, verify=self._verify)

        try:
            response = self._with_retries(send, what=what, should_cancel=should_cancel)
        except PermissionDenied as exc:
            raise SignedUrlExpired(f"{what}: the output URL expired.", status_code=403, code="URL_EXPIRED") from exc
        with response:
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if content_type and not (content_type.startswith("image/") or content_type == "application/octet-stream"):
                raise OutputRejected(f"{what}: the output is {content_type!r}, not an image.")
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > max_bytes:
                raise OutputRejected(f"{what}: the output is {declared} bytes, over the {max_bytes}-byte limit.")
            chunks = []
            received = 0
            try:
                for chunk in response.iter_content(chunk_size=1 << 20):
                    received += len(chunk)
                    if received > max_bytes:
                        raise OutputRejected(f"{what}: the output is over the {max_bytes}-byte limit.")
                    chunks.append(chunk)
            except requests.RequestException as exc:
                raise NetworkError(f"{what}: the download broke off: {_network_reason(exc)}.") from exc
        return b"".join(chunks)

