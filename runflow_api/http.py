"""The one place that talks HTTP: session and pool, timeouts, retries, error bodies, guarded downloads.

Everything above this module deals in typed errors and parsed JSON, never in `requests` objects, so a
retry rule or an error message is written once. Retries follow Runflow's documented backoff (1 s
doubling to 32 s, plus up to 1 s of jitter, bounded attempts) and honour `Retry-After`. A create is only
ever retried with its Idempotency-Key, which the caller passes in and which stays the same across
attempts. Every sleep is cancellable, so a user's Cancel is never stuck behind a backoff.

What comes back from the service is untrusted: every body is read with a size cap and an overall
deadline, every URL it hands out (and every redirect hop) passes `external_url_refusal` before a
connection is made, and every text it sends passes `redact` before it is shown or logged.
"""

from __future__ import annotations

import ipaddress
import json as jsonlib
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

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
from .redact import redact

log = logging.getLogger("runflow_api")

CancelCheck = Callable[[], bool]
CANCEL_TICK_S = 0.05  # the contract: should_cancel is polled at least every 50 ms
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
MAX_JSON_BYTES = 4 * 1024 * 1024
_READ_CHUNK = 1 << 16


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


def cancellable_sleep(seconds: float, should_cancel: CancelCheck | None, wake: threading.Event | None = None) -> bool:
    """Sleep, waking every 50 ms to honour a cancel so the caller is never stuck behind a backoff; with
    `wake`, return True as soon as that event is set (a run's callback), False when the time is up."""
    deadline = time.monotonic() + seconds
    while True:
        if should_cancel is not None and should_cancel():
            raise RunflowCancelled("Cancelled while waiting.")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        step = min(CANCEL_TICK_S, remaining)
        if wake is None:
            time.sleep(step)
        elif wake.wait(step):
            return True


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
    if status in _REDIRECT_STATUS:
        return (
            "Redirects are not followed here: one could lead the key or the image elsewhere. Check that "
            "RUNFLOW_API_BASE is the API's own address (https, no extra path)."
        )
    return _ADVICE.get(status, "")


def error_from_response(response: requests.Response, *, what: str, api_key: str) -> APIError:
    """Turn an error answer into the typed exception whose message tells the user what to do.

    The service's own words (code, message, per-field details) are redacted first: a body such as
    "Invalid API key rf_live_..." must not carry the key into an error dialog or a log line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    code, message, details = _error_fields(body)
    secrets = (api_key,)
    code = redact(code, secrets) if code else None
    details = [(redact(loc, secrets), redact(msg, secrets)) for loc, msg in details]
    status = response.status_code
    text = f"{what} failed: Runflow answered {status}"
    if code:
        text += f" {code}"
    if message:
        text += f": {redact(message, secrets).rstrip('.')}"
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


def _network_reason(exc: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """A short cause without URLs or secrets: urllib3's texts embed presigned URLs, hosts and sometimes
    the whole address with its userinfo ("Failed to parse: http://user:password@..."), so the fallback
    text drops URLs and then passes through `redact` with the caller's secrets."""
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
    return redact(_URL_IN_TEXT.sub("", text), secrets)[:200] or type(exc).__name__


# -- which URLs handed out by the service may be fetched ------------------------------------------

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _literal_address(host: str) -> _Address | None:
    """The IP address a host names literally, or None for a host name.

    Besides the standard forms this reads the legacy IPv4 spellings the system resolver accepts
    without any DNS lookup (`127.1`, `2130706433`, `0x7f.0.0.1`), which would otherwise pass for names."""
    try:
        address: _Address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, ValueError):
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _internal_kind(host: str) -> str | None:
    """What makes `host` internal ("loopback", "link-local", ...), or None for a public address or a name."""
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return "loopback"
    address = _literal_address(name)
    if address is None:
        return None
    for kind, flag in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("private", address.is_private),
        ("multicast", address.is_multicast),
    ):
        if flag:
            return kind
    return None if address.is_global else "non-public"


def _same_origin(a: SplitResult, b: SplitResult) -> bool:
    """Same scheme, host and port: the service's own address, which already receives the key."""
    try:
        return a.scheme == b.scheme and a.hostname == b.hostname and a.port == b.port
    except ValueError:  # a malformed port in the base URL: then nothing is its origin
        return False


def external_url_refusal(url: str, *, base_url: str, allow_insecure: bool = False) -> str | None:
    """Why a URL the service handed out (presigned upload, output, redirect target) must not be fetched;
    None when it may be.

    - Against the emulator (a loopback `base_url`): only URLs on this machine, http or https. The
      emulator signs URLs on itself, so anything else is a bug or a hostile answer.
    - Against a real service: only https (plain http too when `allow_insecure`, an explicit test
      switch) to public hosts. Loopback, link-local (cloud metadata at 169.254.169.254), private,
      multicast and other non-public IP literals are refused, as is the name `localhost`; URLs on the
      service's own origin are allowed, since the key already goes there.
    - Host names are not resolved: a DNS answer checked here may differ from the one used to connect
      (DNS rebinding), so a check on resolved addresses would promise more than it keeps and costs a
      lookup per URL. The URLs come from the service over an authenticated TLS connection; the check
      stops a compromised or misconfigured answer from steering the client at this machine or its
      network by address, which is how such URLs are usually written.
    """
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return "it is not a valid URL"
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("http", "https") or not host:
        return "it is not an http(s) URL"
    base = urlsplit(base_url)
    if is_loopback_url(base_url):
        if _internal_kind(host) == "loopback":
            return None
        return "the local emulator only hands out URLs on this machine, and this one points elsewhere"
    if scheme != "https" and not allow_insecure:
        return "it is a non-https URL, and only https is used with the real service"
    if _same_origin(parts, base):
        return None
    kind = _internal_kind(host)
    if kind is not None:
        return f"it points at a {kind} address, which is never fetched when working with the real service"
    return None


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


def _declared_length(response: requests.Response) -> int:
    """The Content-Length the server announced; 0 when absent or not a number (the cap still applies)."""
    try:
        return max(int(response.headers.get("Content-Length") or 0), 0)
    except ValueError:
        return 0


@dataclass(frozen=True)
class _Deadline:
    """An overall time limit for one body, checked between reads."""

    seconds: float
    at: float

    @classmethod
    def after(cls, seconds: float) -> _Deadline:
        return cls(seconds, time.monotonic() + seconds)


def _body_chunks(
    response: requests.Response, *, what: str, deadline: _Deadline, should_cancel: CancelCheck | None
) -> Iterator[bytes]:
    """The body as it arrives, checking the deadline and the cancel between reads.

    `read1` returns whatever has arrived instead of waiting for a full buffer, so the checks run even
    while a server trickles. A server that sends nothing at all is cut by the per-read timeout, so the
    total is at most the deadline plus one read timeout. I/O failures come out as `requests` errors."""
    while True:
        if should_cancel is not None and should_cancel():
            raise RunflowCancelled(f"{what} was cancelled while the answer was arriving.")
        if time.monotonic() > deadline.at:
            raise RunflowTimeout(
                f"{what} took longer than its overall limit of {deadline.seconds:.1f} s and was stopped: the "
                "server is sending too slowly. Try again later; the limit is Timeouts.body_total_min plus the "
                "size cap at Timeouts.body_min_bytes_per_s."
            )
        try:
            # Decoded (requests opens bodies with decode_content off): a gzip answer must parse, and the
            # caps count what is kept, not what was sent, so a compression bomb stops at the cap too.
            chunk = response.raw.read1(_READ_CHUNK, decode_content=True)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.ReadTimeout(exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise requests.ConnectionError(exc) from exc
        if not chunk:
            return
        yield chunk


def _join_capped(chunks: Iterator[bytes], limit: int) -> bytes | None:
    """The chunks joined, or None as soon as they pass `limit` (the rest is never read)."""
    kept: list[bytes] = []
    received = 0
    for chunk in chunks:
        received += len(chunk)
        if received > limit:
            return None
        kept.append(chunk)
    return b"".join(kept)


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
        self.session.headers["User-Agent"] = f"runflow-comfyui/{__version__}"
        self.session.headers.pop("Authorization", None)

    def __repr__(self) -> str:
        return f"Transport({url_for_log(self.base_url)!r}, key={mask_key(self._api_key)})"

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
                    f"{what} timed out ({_network_reason(exc, self._secrets)}). Runflow may be slow or your "
                    "connection unstable; try again, or raise the timeout."
                )
            except requests.ConnectionError as exc:
                failure = NetworkError(
                    f"{what} failed: could not reach {url_for_log(url)}: {_network_reason(exc, self._secrets)}. "
                    "Check your internet connection, proxy or firewall, and RUNFLOW_API_BASE."
                )
                if "tls" in failure.message.lower():
                    raise failure from exc  # a certificate problem will not fix itself on retry
            except requests.RequestException as exc:
                raise NetworkError(
                    f"{what} failed: the request to {url_for_log(url)} could not be sent: "
                    f"{_network_reason(exc, self._secrets)}. Check the address (RUNFLOW_API_BASE)."
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
        deadline = _Deadline.after(self.timeouts.for_body(limit))
        body = None
        if _declared_length(response) <= limit:
            chunks = _body_chunks(response, what=what, deadline=deadline, should_cancel=should_cancel)
            body = _join_capped(chunks, limit)
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
                f"{what}: refusing the URL {url_for_log(url)!r} handed out by the service: {reason}. Nothing "
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
            if response.status_code not in _REDIRECT_STATUS or not location:
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
        deadline = _Deadline.after(self.timeouts.for_body(max_bytes))
        timeout = (self.timeouts.connect, self.timeouts.download)

        def send() -> requests.Response:
            return self._get_following_redirects(url, what=what, timeout=timeout, should_cancel=should_cancel)

        try:
            response = self._with_retries(send, what=what, url=url, should_cancel=should_cancel)
        except PermissionDenied as exc:
            raise SignedUrlExpired(f"{what}: the output URL expired.", status_code=403, code="URL_EXPIRED") from exc
        with response:
            _check_image_headers(response, max_bytes=max_bytes, what=what)
            return self._read_capped(response, max_bytes=max_bytes, what=what, deadline=deadline,
                                     should_cancel=should_cancel)

    def _read_capped(
        self,
        response: requests.Response,
        *,
        max_bytes: int,
        what: str,
        deadline: _Deadline,
        should_cancel: CancelCheck | None,
    ) -> bytes:
        try:
            chunks = _body_chunks(response, what=what, deadline=deadline, should_cancel=should_cancel)
            body = _join_capped(chunks, max_bytes)
        except requests.RequestException as exc:
            raise NetworkError(
                f"{what}: the download broke off: {_network_reason(exc, self._secrets)}."
            ) from exc
        if body is None:
            raise OutputRejected(f"{what}: the output is over the {max_bytes}-byte limit.")
        return body


def _check_image_headers(response: requests.Response, *, max_bytes: int, what: str) -> None:
    """Refuse an answer that says it is not an image or is over the cap, before reading its body."""
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type and not (content_type.startswith("image/") or content_type == "application/octet-stream"):
        raise OutputRejected(f"{what}: the answer is {content_type!r}, not an image.")
    declared = _declared_length(response)
    if declared > max_bytes:
        raise OutputRejected(f"{what}: the answer is {declared} bytes, over the {max_bytes}-byte limit.")
