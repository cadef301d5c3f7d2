"""An HTTP failure as the typed error whose message tells the user what to do.

The transport (`http.py`) hands every error answer and every network exception here, so the wording,
the advice per status and the redaction are written once. What comes back from the service is untrusted:
its own words (code, message, per-field details) pass `redact` before they reach an error dialog or a
log line, and a network failure's text is reduced to a short cause without URLs (urllib3's texts embed
presigned URLs and sometimes userinfo).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import requests

from ..errors import APIError, RateLimited, error_class_for_status
from ..settings.config import mask_key
from ..settings.redact import redact

REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})


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
    if status in REDIRECT_STATUS:
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


def network_reason(exc: BaseException, secrets: Iterable[str | None] = ()) -> str:
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

