"""The transport: the one place that sends HTTP requests (session and pool, timeouts, retries).

Everything above this module deals in typed errors and parsed JSON, never in `requests` objects, so a
retry rule is written once. Retries follow Runflow's documented backoff (1 s doubling to 32 s, plus up
to 1 s of jitter, bounded attempts) and honour `Retry-After`. A create is only ever retried with its
Idempotency-Key, which the caller passes in and which stays the same across attempts. Every sleep is
cancellable, so a user's Cancel is never stuck behind a backoff.

What comes back from the service is untrusted. The transport leans on three neighbours, one job each:
every URL the service hands out (and every redirect hop) passes `url_policy.external_url_refusal` before
a connection is made; every body is read through `guarded_reads` (size cap, overall deadline, Cancel);
every failure becomes a typed, redacted error in `http_failures`.
"""

from __future__ import annotations

import json as jsonlib
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from ..errors import (
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
)
from ..settings.config import mask_key
from ..settings.redact import redact, url_for_display
from ..version import PACK_VERSION
from .cancel import CancelCheck, cancellable_sleep
from .guarded_reads import Deadline, body_chunks, check_image_headers, declared_length, join_capped
from .http_failures import REDIRECT_STATUS, error_from_response, network_reason
from .url_policy import external_url_refusal

log = logging.getLogger("runflow_api")

_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_REDIRECTS = 5
MAX_JSON_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Timeouts:
    """Per-request limits; the overall wait for a run lives in `runs.PollPolicy`."""

    connect: float = 10.0
    read: float = 60.0
    upload_min: float = 120.0
    upload_bytes_per_s: float = 256 * 1024
    download: float = 120.0
    body_total_min: float = 120.0
    body_min_bytes_per_s: float = 256 * 1024

    def for_upload(self, size: int) -> tuple[float, float]:
        """The SDK's rule: the larger of 120 s and the time to send the bytes at 256 KiB/s."""
        return self.connect, max(self.upload_min, size / self.upload_bytes_per_s)

    def for_body(self, max_bytes: int) -> float:
        """Overall seconds to receive a body of up to `max_bytes`, so a server trickling a byte at a time
        cannot hold a download open: `read`/`download` only bound the gap between two reads. The limit
        is `body_total_min` plus the size cap at `body_min_bytes_per_s` (the SDK's upload pace)."""
        return self.body_total_min + max_bytes / self.body_min_bytes_per_s


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


class _NoAutoRedirectSession(requests.Session):
    """A session that never follows a redirect by itself, nor reads a redirect's body to prepare one.

    `requests` reads the whole body of a 3xx even with `allow_redirects=False` (to build `Response.next`),
    which would bypass the size cap and the deadline. The transport follows redirects where the contract
    allows them, hop by hop, after checking each target."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None


class _BearerAuth(AuthBase):
    """Attaches the key to API requests only, at the last moment, so no local variable on the request
    path (which crash reporters and debuggers print) holds it; its repr shows the masked form."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = "Bearer " + self._api_key
        return request

    def __repr__(self) -> str:
        return f"BearerAuth({mask_key(self._api_key)})"




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
        max_json_bytes: int = MAX_JSON_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._auth = _BearerAuth(api_key)
        # Redacted from every text shown: the key, and a password the user put in RUNFLOW_API_BASE.
        self._secrets = (api_key, urlsplit(self.base_url).password)
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.allow_insecure = allow_insecure
        self.max_json_bytes = max_json_bytes
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        # Passed on every request: requests lets REQUESTS_CA_BUNDLE override a Session-level setting.
        self._verify = verify
        self.session = _NoAutoRedirectSession()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = f"runflow-comfyui/{PACK_VERSION}"
        self.session.headers.pop("Authorization", None)

    def __repr__(self) -> str:
        return f"Transport({url_for_display(self.base_url)!r}, key={mask_key(self._api_key)})"

    def close(self) -> None:
        self.session.close()

    # -- the retry loop shared by every kind of request --------------------------------------------

    def _with_retries(
        self,
        send: Callable[[], requests.Response],
        *,
        what: str,
        url: str,
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
                    f"{what} timed out ({network_reason(exc, self._secrets)}). Runflow may be slow or your "
                    "connection unstable; try again, or raise the timeout."
                )
            except requests.ConnectionError as exc:
                failure = NetworkError(
                    f"{what} failed: could not reach {url_for_display(url)}: {network_reason(exc, self._secrets)}. "
                    "Check your internet connection, proxy or firewall, and RUNFLOW_API_BASE."
                )
                if "tls" in failure.message.lower():
                    raise failure from exc  # a certificate problem will not fix itself on retry
            except requests.RequestException as exc:
                raise NetworkError(
                    f"{what} failed: the request to {url_for_display(url)} could not be sent: "
                    f"{network_reason(exc, self._secrets)}. Check the address (RUNFLOW_API_BASE)."
                ) from exc
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
            log.info("%s: %s; retrying in %.1f s (attempt %d/%d)", what, redact(failure.message, self._secrets),
                     delay, attempt, self.retry.attempts)
            cancellable_sleep(delay, should_cancel)

    # -- bodies ----------------------------------------------------------------------------------

    def _load_body(
        self, response: requests.Response, *, what: str, should_cancel: CancelCheck | None
    ) -> requests.Response:
        """Read a JSON-sized body into the response (so `.json()` works), capped and under a deadline.

        A 2xx body over `max_json_bytes` is refused; an error body over it is dropped, so the status
        still produces its typed error without the client holding megabytes of someone's text."""
        limit = self.max_json_bytes
        deadline = Deadline.after(self.timeouts.for_body(limit))
        body = None
        if declared_length(response) <= limit:
            chunks = body_chunks(response, what=what, deadline=deadline, should_cancel=should_cancel)
            body = join_capped(chunks, limit)
        response.close()  # drops the connection if bytes are left; a fully read one is already back in the pool
        response._content = body or b""
        if body is None and 200 <= response.status_code < 300:
            raise ServiceUnavailable(
                f"{what}: Runflow's answer is larger than the {limit}-byte limit for API answers, so it was not "
                "read. Check RUNFLOW_API_BASE points at the Runflow API; if it does, report this.",
                status_code=response.status_code,
            )
        return response

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
        """An authenticated call to `/v1/...`; returns the parsed JSON body of any 2xx answer.

        The key is attached by `self._auth` (never held in a local here). Redirects are not followed:
        the contract has none, and one could lead the key's requests or answers elsewhere."""
        headers = {"Accept": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        url = f"{self.base_url}{path}"
        timeout = (self.timeouts.connect, self.timeouts.read)

        def send() -> requests.Response:
            response = self.session.request(
                method, url, json=json, headers=headers, auth=self._auth, timeout=timeout, verify=self._verify,
                stream=True,
            )
            return self._load_body(response, what=what, should_cancel=should_cancel)

        response = self._with_retries(send, what=what, url=url, should_cancel=should_cancel)
        if not response.content:
            return {}
        try:
            return jsonlib.loads(response.content)
        except ValueError as exc:
            raise ServiceUnavailable(
                f"{what}: Runflow answered {response.status_code} with a body that is not JSON. "
                "Check RUNFLOW_API_BASE points at the Runflow API.",
                status_code=response.status_code,
            ) from exc

    def check_external_url(self, url: str, *, what: str) -> None:
        """Refuse, before any connection, a URL from the service that `external_url_refusal` rejects."""
        reason = external_url_refusal(url, base_url=self.base_url, allow_insecure=self.allow_insecure)
        if reason is not None:
            raise InputRejected(
                f"{what}: refusing the URL {url_for_display(url)!r} handed out by the service: {reason}. Nothing "
                "was sent to it. Check RUNFLOW_API_BASE; if it is the real Runflow API, report this."
            )

    def put_bytes(
        self, url: str, data: bytes, content_type: str, *, should_cancel: CancelCheck | None = None
    ) -> None:
        """Upload to a presigned storage URL: no Authorization header, it is another host's credential.

        A redirect is not followed (presigned uploads are not redirected, and following one could send
        the image elsewhere); it fails like any other unexpected status."""
        what = "Uploading the image"
        self.check_external_url(url, what=what)
        timeout = self.timeouts.for_upload(len(data))

        def send() -> requests.Response:
            response = self.session.put(
                url, data=data, headers={"Content-Type": content_type}, timeout=timeout, verify=self._verify,
                stream=True,
            )
            return self._load_body(response, what=what, should_cancel=should_cancel)

        try:
            self._with_retries(send, what=what, url=url, should_cancel=should_cancel)
        except PermissionDenied as exc:
            raise SignedUrlExpired(
                "The upload URL expired before the image was sent.", status_code=403, code="URL_EXPIRED"
            ) from exc

    def _get_following_redirects(
        self, url: str, *, what: str, timeout: tuple[float, float], should_cancel: CancelCheck | None
    ) -> requests.Response:
        """GET a presigned URL, following at most `MAX_REDIRECTS` redirects, each target checked first.

        Storage and CDNs may redirect a download; a redirect to this machine or the local network must
        be refused before anything connects to it, so requests' own following is off."""
        for _ in range(MAX_REDIRECTS + 1):
            self.check_external_url(url, what=what)
            response = self.session.get(url, stream=True, timeout=timeout, verify=self._verify)
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUS or not location:
                if 200 <= response.status_code < 300:
                    return response
                return self._load_body(response, what=what, should_cancel=should_cancel)
            response.close()
            url = urljoin(url, location)
        raise OutputRejected(
            f"{what}: the output URL redirected more than {MAX_REDIRECTS} times, so it was abandoned. "
            "Try again; if it keeps happening, report it."
        )

    def download(
        self,
        url: str,
        *,
        max_bytes: int,
        what: str,
        should_cancel: CancelCheck | None = None,
    ) -> bytes:
        """Fetch a result image: streamed, capped, content-type checked, under an overall deadline
        (`Timeouts.for_body(max_bytes)`, from the first request on), cancellable between reads.
        403 means the URL expired."""
        deadline = Deadline.after(self.timeouts.for_body(max_bytes))
        timeout = (self.timeouts.connect, self.timeouts.download)

        def send() -> requests.Response:
            return self._get_following_redirects(url, what=what, timeout=timeout, should_cancel=should_cancel)

        try:
            response = self._with_retries(send, what=what, url=url, should_cancel=should_cancel)
        except PermissionDenied as exc:
            raise SignedUrlExpired(f"{what}: the output URL expired.", status_code=403, code="URL_EXPIRED") from exc
        with response:
            check_image_headers(response, max_bytes=max_bytes, what=what)
            return self._read_capped(response, max_bytes=max_bytes, what=what, deadline=deadline,
                                     should_cancel=should_cancel)

    def _read_capped(
        self,
        response: requests.Response,
        *,
        max_bytes: int,
        what: str,
        deadline: Deadline,
        should_cancel: CancelCheck | None,
    ) -> bytes:
        try:
            chunks = body_chunks(response, what=what, deadline=deadline, should_cancel=should_cancel)
            body = join_capped(chunks, max_bytes)
        except requests.RequestException as exc:
            raise NetworkError(
                f"{what}: the download broke off: {network_reason(exc, self._secrets)}."
            ) from exc
        if body is None:
            raise OutputRejected(f"{what}: the output is over the {max_bytes}-byte limit.")
        return body
