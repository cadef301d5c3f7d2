"""Which requests may reach a route: addressed to this machine (Host), from its own page (Origin), with JSON.

The browser never talks to Runflow itself and never holds the key, so these routes are what a hostile
web page would aim at. State-changing routes refuse foreign origins and non-JSON bodies, because any web
page the user visits can send a form POST to a ComfyUI on localhost. While ComfyUI listens on loopback
only (a desktop), every route (read-only ones too) also refuses requests addressed to a host name that is
not this machine's, because a page can rebind its own name to 127.0.0.1 (DNS rebinding) and then be
same-origin with ComfyUI; a ComfyUI started with `--listen 0.0.0.0` (a cloud GPU box) takes any name.
docs/security.md has the threat model. `state_changing` and `readable` wrap the other route modules'
handlers.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .answers import error_response

log = logging.getLogger("runflow_api.routes")  # one logger for every route module

ALLOWED_HOSTS_ENV = "RUNFLOW_ALLOWED_HOSTS"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
JsonHandler = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


def _host_port(netloc: str, default_port: int) -> tuple[str, int] | None:
    parts = urlsplit(f"//{netloc}")
    try:
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port or default_port


def origin_allowed(origin: str | None, host: str | None) -> bool:
    """True when a request may change state: no Origin (curl, scripts; browsers always send one on
    POST/DELETE) or an Origin whose host:port is the Host the request was sent to."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not host:
        return False
    default_port = 443 if parts.scheme == "https" else 80
    ours = _host_port(parts.netloc, default_port)
    return ours is not None and ours == _host_port(host, default_port)


def listens_beyond_loopback(listen: object) -> bool:
    """True when ComfyUI's `--listen` value (one address or a comma-separated list, IPv6 with or without
    brackets) holds an address that is not loopback: `0.0.0.0`, `::`, a LAN or public address.

    Such a server was exposed on purpose and is reached by names nobody can list in advance (a cloud GPU
    provider's proxy name, a LAN name). Anything else counts as loopback only, so a surprise keeps the
    stricter rule: no value, not text, an empty list, and a host name, which is not resolved here (Debian
    maps the machine's own name to 127.0.1.1); RUNFLOW_ALLOWED_HOSTS takes the names it is reached by."""
    if not isinstance(listen, str):
        return False
    for entry in listen.split(","):
        try:
            ip = ipaddress.ip_address(entry.strip().strip("[]"))
        except ValueError:
            continue
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if not (mapped or ip).is_loopback:
            return True
    return False


def _comfyui_listen() -> object:
    """ComfyUI's `--listen` value, or None outside ComfyUI.

    Read from the module ComfyUI already imported: importing `comfy.cli_args` ourselves would parse the
    command line of whatever process loaded this file."""
    cli_args = sys.modules.get("comfy.cli_args")
    return getattr(getattr(cli_args, "args", None), "listen", None)


def _allowed_host_names() -> set[str]:
    """`RUNFLOW_ALLOWED_HOSTS`: extra names the user reaches ComfyUI by (a LAN name, a reverse proxy)."""
    entries = os.environ.get(ALLOWED_HOSTS_ENV, "").split(",")
    return {hp[0] for entry in entries if entry.strip() and (hp := _host_port(entry.strip(), 0))}


def _is_loopback_address(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_allowed(host: str | None) -> bool:
    """True when the Host a request was addressed to is acceptable for how ComfyUI listens.

    DNS rebinding only threatens a server that listens on loopback alone (a desktop): a hostile page
    rebinds its own *name* to 127.0.0.1 and is then same-origin with ComfyUI, so it sends that name as
    Host. There only `localhost`, loopback addresses and the names in RUNFLOW_ALLOWED_HOSTS are accepted.
    A ComfyUI listening on other addresses (`--listen 0.0.0.0`) was exposed on purpose and is reached by
    names the pack cannot know (a cloud provider's proxy name), so any Host is accepted there."""
    if listens_beyond_loopback(_comfyui_listen()):
        return True
    parsed = _host_port(host, 0) if host else None
    if parsed is None:
        return False
    name = parsed[0].rstrip(".")
    return name == "localhost" or name in _allowed_host_names() or _is_loopback_address(name)


def state_changing(handler: JsonHandler) -> Handler:
    """Refuse what a foreign web page could send (another Origin, a form or text body), then hand the
    handler the parsed JSON object."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        refused = _refuse_foreign_host(request)
        if refused is not None:
            return refused
        if not origin_allowed(request.headers.get("Origin"), request.headers.get("Host")):
            log.warning("Runflow: refused a %s %s from origin %s", request.method, request.path,
                        request.headers.get("Origin"))
            return error_response(403, "Cross-origin requests are not allowed for this route.", "forbidden_origin")
        if request.content_type != "application/json":
            return error_response(415, "Send a JSON body with Content-Type: application/json.", "unsupported_media")
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return error_response(400, "The request body is not valid JSON.", "bad_request")
        if not isinstance(body, dict):
            return error_response(400, "The request body must be a JSON object.", "bad_request")
        return await handler(request, body)

    return guarded


def readable(handler: Handler) -> Handler:
    """A read-only route answers only requests addressed to this machine too: a DNS-rebinding page
    could otherwise read the masked key, the service mode and what has been spent."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        return _refuse_foreign_host(request) or await handler(request)

    return guarded


def _refuse_foreign_host(request: web.Request) -> web.Response | None:
    host = request.headers.get("Host")
    if host_allowed(host):
        return None
    log.warning("Runflow: refused a %s %s addressed to host %r", request.method, request.path, host)
    return _foreign_host(host)


def _foreign_host(host: str | None) -> web.Response:
    return error_response(
        403,
        f"Refused: this request was addressed to host {host!r}, which is not localhost or a loopback "
        "address, while ComfyUI listens only on this machine's loopback address, so it may come from a web "
        "page using DNS rebinding. If you reach ComfyUI under that name (a reverse proxy, a LAN name), add "
        f"it to the environment variable {ALLOWED_HOSTS_ENV} (comma-separated names) where ComfyUI is "
        "started, and restart ComfyUI.",
        "forbidden_host",
    )
