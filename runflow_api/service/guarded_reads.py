"""Reading an untrusted answer's body: a size cap, an overall deadline, Cancel between reads.

A server that trickles a byte at a time, announces a huge length, compresses a bomb or answers with
something other than an image must not hold a download open, fill memory or reach the decoder. The
transport (`http.py`) reads every body it keeps through these helpers: JSON answers and result images.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import requests
import urllib3

from ..errors import OutputRejected, RunflowCancelled, RunflowTimeout

_READ_CHUNK = 1 << 16


def declared_length(response: requests.Response) -> int:
    """The Content-Length the server announced; 0 when absent or not a number (the cap still applies)."""
    try:
        return max(int(response.headers.get("Content-Length") or 0), 0)
    except ValueError:
        return 0


@dataclass(frozen=True)
class Deadline:
    """An overall time limit for one body, checked between reads."""

    seconds: float
    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(seconds, time.monotonic() + seconds)


def body_chunks(
    response: requests.Response, *, what: str, deadline: Deadline, should_cancel: Callable[[], bool] | None
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


def join_capped(chunks: Iterator[bytes], limit: int) -> bytes | None:
    """The chunks joined, or None as soon as they pass `limit` (the rest is never read)."""
    kept: list[bytes] = []
    received = 0
    for chunk in chunks:
        received += len(chunk)
        if received > limit:
            return None
        kept.append(chunk)
    return b"".join(kept)


def check_image_headers(response: requests.Response, *, max_bytes: int, what: str) -> None:
    """Refuse an answer that says it is not an image or is over the cap, before reading its body."""
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type and not (content_type.startswith("image/") or content_type == "application/octet-stream"):
        raise OutputRejected(f"{what}: the answer is {content_type!r}, not an image.")
    declared = declared_length(response)
    if declared > max_bytes:
        raise OutputRejected(f"{what}: the answer is {declared} bytes, over the {max_bytes}-byte limit.")
