"""Which service the engine talks to, and at which addresses: the mode (the real Runflow or the emulator),
the API's base URL and this machine's public URL.

The mode lets anyone build and test graphs offline for free. It is not a secret, so it lives in a small
file beside the journal (or `RUNFLOW_MODE`), shared by the ComfyUI nodes, its routes and the CLI; the
client for it is built by `service_choice.make_client`. The base URL is `RUNFLOW_API_BASE` or the public API;
plain http only on this machine (the emulator), so a key is never sent unencrypted. The public URL
(`RUNFLOW_PUBLIC_URL`) is where Runflow reaches this machine with callbacks.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from ..errors import InputRejected
from ..settings import directories
from ..settings.redact import url_for_display
from .url_policy import is_loopback_url

DEFAULT_BASE_URL = "https://api.runflow.io"
BASE_ENV = "RUNFLOW_API_BASE"
# The bundled emulator's service id (`service_choice.make_client`): its runs cost nothing, so no budget counts them.
EMULATOR_SERVICE_ID = "emulator"
PUBLIC_URL_ENV = "RUNFLOW_PUBLIC_URL"
MODES = ("runflow", "emulator")
MODE_ENV = "RUNFLOW_MODE"


def _mode_file() -> os.PathLike[str]:
    return directories.data_dir() / "mode"


def current_mode() -> str:
    """`RUNFLOW_MODE`, else the saved choice, else the real service."""
    env = os.environ.get(MODE_ENV, "").strip().lower()
    if env in MODES:
        return env
    try:
        with open(_mode_file(), encoding="utf-8") as handle:
            saved = handle.read().strip().lower()
    except OSError:
        return "runflow"
    return saved if saved in MODES else "runflow"


def set_mode(mode: str) -> None:
    if mode not in MODES:
        raise InputRejected(f"Service mode {mode!r} is unknown; use one of {', '.join(MODES)}.")
    path = directories.data_dir() / "mode"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(mode, encoding="utf-8")


def validate_public_url(url: str, *, what: str = PUBLIC_URL_ENV) -> str:
    """The base URL at which Runflow reaches this server, without a trailing /: http(s), a host, no
    credentials, no query. Plain http is allowed (a reverse proxy may terminate TLS) but only https is
    safe on the internet, which docs/callbacks.md says."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise InputRejected(
            f"{what} {url_for_display(url)!r} is not a usable base URL: give the address at which Runflow "
            "can reach this server, such as https://comfy.example.com (no user name, password or query)."
        )
    if parts.query or parts.fragment:
        raise InputRejected(f"{what} {url_for_display(url)!r} must not have a query or fragment.")
    return url


def public_url() -> str | None:
    """`RUNFLOW_PUBLIC_URL`, validated; None when unset."""
    raw = os.environ.get(PUBLIC_URL_ENV, "").strip()
    return validate_public_url(raw) if raw else None


def resolve_base_url(explicit: str | None = None) -> str:
    """The service address: explicit, else `RUNFLOW_API_BASE`, else the public API; without a trailing /."""
    base = (explicit or os.environ.get(BASE_ENV) or DEFAULT_BASE_URL).strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise InputRejected(
            f"The Runflow base URL {url_for_display(base)!r} is not an http(s) address. Set RUNFLOW_API_BASE "
            f"to something like {DEFAULT_BASE_URL}, or unset it."
        )
    if parts.scheme == "http" and not is_loopback_url(base):
        raise InputRejected(
            f"The Runflow base URL {url_for_display(base)!r} uses plain http on a non-local host, which would "
            "send the key unencrypted. Use https, or a loopback address for the emulator."
        )
    return base

