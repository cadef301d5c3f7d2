"""Presigned, expiring URLs, like the storage URLs Runflow hands out for uploads and downloads.

A URL carries `expires=<unix seconds>&sig=<hex HMAC>`; the HMAC covers what the URL may do (upload or
download), which file, and until when, under a secret that exists only inside this emulator. So a URL
that verifies was minted here, which is how the emulator tells its own image URLs from foreign ones.
`expires` keeps milliseconds so short test TTLs behave exactly; it is rounded down, so a TTL of 0 is
already expired when the URL is handed out.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import math
import secrets
import time
from urllib.parse import parse_qs, urlencode


class Verdict(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"


class UrlSigner:
    """Mints and checks the query part of presigned URLs."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def _sig(self, purpose: str, file_id: str, expires: str) -> str:
        message = f"{purpose}\n{file_id}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(self, purpose: str, file_id: str, ttl: float) -> str:
        """The query string (without "?") granting `purpose` on `file_id` for `ttl` seconds from now."""
        expires = f"{math.floor((time.time() + ttl) * 1000) / 1000:.3f}"
        return urlencode({"expires": expires, "sig": self._sig(purpose, file_id, expires)})

    def check(self, purpose: str, file_id: str, query: str) -> Verdict:
        """Is this query a genuine grant for `purpose` on `file_id`, and is it still current?

        A bad signature is reported as INVALID even when the URL would also have expired: whoever holds a
        forged URL must not learn anything about timing.
        """
        fields = parse_qs(query)
        expires_values, sig_values = fields.get("expires", []), fields.get("sig", [])
        if len(expires_values) != 1 or len(sig_values) != 1:
            return Verdict.INVALID
        expires, sig = expires_values[0], sig_values[0]
        if not hmac.compare_digest(self._sig(purpose, file_id, expires), sig):
            return Verdict.INVALID
        # The signature covers `expires`, and only this signer wrote it, so it is a number.
        return Verdict.VALID if time.time() < float(expires) else Verdict.EXPIRED
