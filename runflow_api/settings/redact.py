"""Making text safe to show: credentials never leave through a message, a log line or a stored field.

Two kinds of secret travel inside ordinary strings: a password in a URL's userinfo (`https://u:p@host`),
which users paste into RUNFLOW_API_BASE or an image URL, and the API key itself, which a hostile or
careless service may echo back in an error body. Everything shown to a person passes through here.
Besides the secrets a caller names, anything shaped like a Runflow key or callback secret (any of
`KEY_PREFIXES` or `SECRET_PREFIXES`, even glued to a word as in `sku_rf_live_...`) is hidden too: a
service may echo a credential the caller does not hold (an old one, a colleague's).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

_REDACTED = "[redacted]"
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}")
_USERINFO_IN_TEXT = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")
# Every kind of Runflow key: inference keys (live and test) and admin (service) keys. The one list that
# both the redaction below and config's masking read, so a new kind of key is hidden everywhere at once.
KEY_PREFIXES = ("rf_live_", "rf_test_", "rf_svc_")
# The callback-signing secrets Runflow issues (`whsec_...`): hidden by shape like keys, masked by config.
SECRET_PREFIXES = ("whsec_",)


def _alternatives(prefixes: tuple[str, ...]) -> str:
    return "(" + "|".join(re.escape(prefix) for prefix in prefixes) + ")"


# No word boundary before the prefix: `sku_rf_live_...` is a key glued to a word, and `_` is a word character.
# Keys are letters, digits and `_` (config.validate_key); secrets may also hold base64's `+/=` and `-`.
_KEY_LIKE = re.compile(
    _alternatives(KEY_PREFIXES) + r"[A-Za-z0-9_]{4,}|" + _alternatives(SECRET_PREFIXES) + r"[A-Za-z0-9_+/=-]{4,}"
)


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
    text = _KEY_LIKE.sub(lambda match: f"{match.group(1) or match.group(2)}{_REDACTED}", text)
    text = _BEARER.sub(lambda match: f"{match.group(1)} {_REDACTED}", text)
    return _USERINFO_IN_TEXT.sub(lambda match: f"{match.group(1)}{_REDACTED}@", text)


def normalized(text: str) -> str:
    """`text` as it reads: NFKC (full-width and other look-alike forms folded) and without format
    characters (zero-width spaces, joiners, direction marks), which hide a key from a plain match."""
    return "".join(char for char in unicodedata.normalize("NFKC", text) if unicodedata.category(char) != "Cf")


def carries_secret(text: str, secrets: Iterable[str | None] = ()) -> bool:
    """True when `text`, as written or as it reads (`normalized`), holds something `redact` hides: one of
    `secrets`, a key-shaped token, an Authorization value or a URL's password."""
    secrets = tuple(secrets)
    return any(redact(form, secrets) != form for form in {text, normalized(text)})


def quoted(text: str, secrets: Iterable[str | None] = (), *, limit: int = 80) -> str:
    """`text` quoted for a message (its first `limit` characters), or a note in its place when it carries
    a secret: checked on the whole text, since a cut could leave part of a key that no longer matches."""
    if carries_secret(text, secrets):
        return "(not shown: it looks like a credential)"
    return repr(text[:limit])
