"""Making text safe to show: credentials never leave through a message, a log line or a stored field.

Two kinds of secret travel inside ordinary strings: a password in a URL's userinfo (`https://u:p@host`),
which users paste into RUNFLOW_API_BASE or an image URL, and the API key itself, which a hostile or
careless service may echo back in an error body. Everything shown to a person passes through here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

_REDACTED = "[redacted]"
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}")
_USERINFO_IN_TEXT = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")


def strip_userinfo(url: str) -> str:
    """The URL without `user:password@`; anything that does not parse as a URL is returned unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def url_for_display(url: str) -> str:
    """A URL as it may be shown or logged: no userinfo and no query (presigned signatures are credentials)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every given secret, every Authorization value and every URL userinfo replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _REDACTED)
    text = _BEARER.sub(lambda match: f"{match.group(1)} {_REDACTED}", text)
    return _USERINFO_IN_TEXT.sub(lambda match: f"{match.group(1)}{_REDACTED}@", text)
