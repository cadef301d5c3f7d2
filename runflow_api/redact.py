"""Making text safe to show: credentials never leave through a message, a log line or a stored field.

Two kinds of secret travel inside ordinary strings: a password in a URL's userinfo (`https://u:p@host`),
which users paste into RUNFLOW_API_BASE or an image URL, and the API key itself, which a hostile or
careless service may echo back in an error body. Everything shown to a person passes through here.
Besides the secrets a caller names, anything shaped like a Runflow key (`rf_live_...`, `rf_svc_...`) is
hidden too: a service may echo a key the caller does not hold (an old one, a colleague's).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

_REDACTED = "[redacted]"
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}")
_USERINFO_IN_TEXT = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")
_KEY_LIKE = re.compile(r"\b(rf_(?:live|svc)_)[A-Za-z0-9_]{4,}")


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
    """`text` with every given secret, every key-shaped token, every Authorization value and every URL
    userinfo replaced. The masked form `rf_live_…abcd` is left alone: `…` ends the key pattern."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _REDACTED)
    text = _KEY_LIKE.sub(lambda match: f"{match.group(1)}{_REDACTED}", text)
    text = _BEARER.sub(lambda match: f"{match.group(1)} {_REDACTED}", text)
    return _USERINFO_IN_TEXT.sub(lambda match: f"{match.group(1)}{_REDACTED}@", text)
