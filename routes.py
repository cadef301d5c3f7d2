"""The pack's server routes under /runflow/..., the only way the browser side (web/) reaches the engine.

The browser never talks to Runflow itself (the API sends no CORS headers) and never holds the key: it
sends a new key here once, the key is written server-side with mode 0600, and every answer carries only
`config.mask_key()` form. State-changing routes refuse foreign origins and non-JSON bodies, because any web
page the user visits can send a form POST to a ComfyUI on localhost, and requests addressed to a host name
that is not this machine's, because a page can rebind its own name to 127.0.0.1 (DNS rebinding) and then
be same-origin with ComfyUI. Blocking work (HTTP to Runflow, file
writes with fsync, starting the emulator) runs in a worker thread so ComfyUI's event loop never stalls.

Handlers are registered on ComfyUI's route table at import when a PromptServer exists; tests build their
own aiohttp app with `add_routes`.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

if __package__:  # inside ComfyUI the pack folder is a package and the engine its subpackage
    from .runflow_api import (
        callbacks,
        config,
        directories,
        errors,
        fleet,
        http,
        ledger,
        product_isolation,
        secret_files,
        service,
        service_address,
        wakeups,
    )
else:  # tests load this file on its own, with the engine installed beside it
    from runflow_api import (  # type: ignore[no-redef]
        callbacks,
        config,
        directories,
        errors,
        fleet,
        http,
        ledger,
        product_isolation,
        secret_files,
        service,
        service_address,
        wakeups,
    )

log = logging.getLogger("runflow_api.routes")

ALLOWED_HOSTS_ENV = "RUNFLOW_ALLOWED_HOSTS"
_WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
JsonHandler = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]

# A connection test answers within seconds and says exactly what happened, instead of retrying for a minute.
TEST_RETRY = http.RetryPolicy(attempts=1)
TEST_TIMEOUTS = http.Timeouts(connect=5.0, read=15.0)

# Most specific first: MissingApiKey is an InputRejected, every API error is an APIError.
REASONS: tuple[tuple[type[errors.RunflowError], str], ...] = (
    (errors.MissingApiKey, "missing_key"),
    (errors.InputRejected, "invalid_config"),
    (errors.AuthenticationFailed, "unauthorized"),
    (errors.PermissionDenied, "forbidden"),
    (errors.InsufficientCredit, "insufficient_credit"),
    (errors.RateLimited, "rate_limited"),
    (errors.ServiceUnavailable, "service_unavailable"),
    (errors.APIError, "api_error"),
    (errors.NetworkError, "network_error"),
    (errors.RunflowTimeout, "timeout"),
)


# -- pure helpers -------------------------------------------------------------------------------------


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


def _comfyui_listen_addresses() -> set[str]:
    """The addresses ComfyUI was started with (`--listen`, comma-separated), when ComfyUI is running.

    Read from the module ComfyUI already imported: importing `comfy.cli_args` ourselves would parse the
    command line of whatever process loaded this file."""
    cli_args = sys.modules.get("comfy.cli_args")
    listen = getattr(getattr(cli_args, "args", None), "listen", None)
    if not isinstance(listen, str):
        return set()
    return {address.strip().strip("[]").lower() for address in listen.split(",") if address.strip()}


def _allowed_host_names() -> set[str]:
    """`RUNFLOW_ALLOWED_HOSTS`: extra names the user reaches ComfyUI by (a LAN name, a reverse proxy)."""
    entries = os.environ.get(ALLOWED_HOSTS_ENV, "").split(",")
    return {hp[0] for entry in entries if entry.strip() and (hp := _host_port(entry.strip(), 0))}


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(host: str | None) -> bool:
    """True when a request was addressed to this machine: a loopback name or address, an address
    ComfyUI listens on, or a name in RUNFLOW_ALLOWED_HOSTS.

    A rebinding page sends its own *name* as Host, so names are the danger. When ComfyUI listens on
    every interface (0.0.0.0 or ::) it can be reached at any of this machine's addresses, and an IP
    address can never be a rebound name, so any IP address is accepted then."""
    parsed = _host_port(host, 0) if host else None
    if parsed is None:
        return False
    name = parsed[0].rstrip(".")
    if name == "localhost" or name in _allowed_host_names():
        return True
    if not _is_ip_address(name):
        return False
    listening = _comfyui_listen_addresses()
    return ipaddress.ip_address(name).is_loopback or name in listening or bool(listening & _WILDCARD_ADDRESSES)


def key_status() -> dict[str, Any]:
    """What the browser may know about the key: whether there is one, its masked form and its source."""
    source = config.key_source()
    key = os.environ.get(config.KEY_ENV, "").strip() if source == "env" else config.read_key_file()
    masked = config.mask_key(key) if key else None
    return {"configured": source is not None, "masked": masked, "source": source}


def reason_for(exc: BaseException) -> str:
    """A stable code the browser can branch on; the engine's message says the rest."""
    for kind, reason in REASONS:
        if isinstance(exc, kind):
            return reason
    return "error"


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _orgs(me: dict[str, Any]) -> list[dict[str, Any]]:
    orgs = []
    for membership in me.get("memberships") or []:
        if not isinstance(membership, dict):
            continue
        org = membership.get("org") or membership.get("organization") or {}
        name = (org.get("name") or org.get("slug") or org.get("id")) if isinstance(org, dict) else org
        scopes = membership.get("scopes") or []
        orgs.append({"name": name, "role": membership.get("role"), "scopes": [str(s) for s in scopes]})
    return orgs


def _user(me: dict[str, Any]) -> str | None:
    user = me.get("user") if isinstance(me.get("user"), dict) else me
    return user.get("email") or user.get("name") or user.get("id")


def connection_test(mode: str) -> dict[str, Any]:
    """Blocking: ask the service who the key belongs to and what the balance is, or why it cannot."""
    result: dict[str, Any] = {
        "ok": False,
        "mode": mode,
        "user": None,
        "orgs": [],
        "balance": None,
        "currency": None,
        "balance_error": None,
        "error": None,
    }
    try:
        with service.make_client(mode, cache=False, retry=TEST_RETRY, timeouts=TEST_TIMEOUTS) as client:
            me = client.me()
            result.update(ok=True, user=_user(me), orgs=_orgs(me))
            try:
                balance = client.balance()
            except errors.RunflowError as exc:  # the key works; it may just lack credit_balance:read
                result["balance_error"] = exc.message
            else:
                result.update(balance=_money(balance.amount), currency=balance.currency)
    except errors.RunflowError as exc:
        result["error"] = {"reason": reason_for(exc), "message": exc.message}
    except Exception as exc:  # an engine bug must still come back as an answer, not a hung button
        log.exception("Runflow connection test failed unexpectedly")
        result["error"] = {"reason": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
    return result


def ledger_totals() -> dict[str, Any]:
    totals = ledger.Ledger.for_path(directories.data_dir() / "ledger.jsonl").totals()
    return {
        "session_runs": totals.session_runs,
        "session_cost": _money(totals.session_cost),
        "all_runs": totals.all_runs,
        "all_cost": _money(totals.all_cost),
    }


def shared_store_status() -> dict[str, Any]:
    """The fleet store for the settings panel: masked address, connected or not, and today's team spend.
    Never the password; the address itself comes from RUNFLOW_SHARED_STORE, never from the browser."""
    try:
        store = fleet.store_from_env()
    except errors.InputRejected as exc:
        return {"configured": True, "connected": False, "problem": exc.message}
    if store is None:
        return {"configured": False}
    ledger_path = directories.data_dir() / "ledger.jsonl"
    budget = fleet.team_budget_from_env()
    money = fleet.FleetMoney(store, team_budget=None, local_ledger=ledger.Ledger.for_path(ledger_path))
    spent, reserved, whole_fleet = money.today()
    return {
        "configured": True,
        **store.state(),
        "team_budget": budget,
        "today": {"spent": _money(spent), "reserved": _money(reserved), "fleet": whole_fleet},
    }


def mode_status() -> dict[str, Any]:
    """The current service and whether RUNFLOW_MODE pins it (then the browser cannot switch it)."""
    return {
        "mode": service.current_mode(),
        "modes": list(service.MODES),
        "locked": os.environ.get(service.MODE_ENV, "").strip().lower() in service.MODES,
    }


# -- request plumbing ---------------------------------------------------------------------------------


def _error(status: int, message: str, reason: str) -> web.Response:
    return web.json_response({"error": {"reason": reason, "message": message}}, status=status)


async def _in_thread(func: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(func, *args))


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
            return _error(403, "Cross-origin requests are not allowed for this route.", "forbidden_origin")
        if request.content_type != "application/json":
            return _error(415, "Send a JSON body with Content-Type: application/json.", "unsupported_media")
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return _error(400, "The request body is not valid JSON.", "bad_request")
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.", "bad_request")
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
    return _error(
        403,
        f"Refused: this request was addressed to host {host!r}, which is not a loopback address or an "
        "address ComfyUI listens on, so it may come from a web page using DNS rebinding. If you reach "
        f"ComfyUI under that name, add it to the environment variable {ALLOWED_HOSTS_ENV} (comma-separated "
        "names) where ComfyUI is started, and restart ComfyUI.",
        "forbidden_host",
    )


def _env_key_conflict() -> web.Response:
    return _error(
        409,
        f"The key comes from the environment variable {config.KEY_ENV}, which takes precedence over a "
        "key saved here. Change or unset it where ComfyUI is started, then restart ComfyUI.",
        "env_key",
    )


# -- handlers -----------------------------------------------------------------------------------------


async def get_key(request: web.Request) -> web.Response:
    return web.json_response(await _in_thread(key_status))


@state_changing
async def post_key(request: web.Request, body: dict[str, Any]) -> web.Response:
    if config.key_source() == "env":
        return _env_key_conflict()
    key = body.get("key")
    if not isinstance(key, str):
        return _error(400, 'Send the key as {"key": "rf_live_..."}.', "bad_request")
    refused = await _save_credential(config.write_key_file, key, what="the key",
                                     folder=directories.key_file_path().parent, file_env=directories.KEY_FILE_ENV)
    if refused is not None:
        return refused
    log.info("Runflow: API key %s saved (mode 0600)", config.mask_key(key.strip()))
    return web.json_response(await _in_thread(key_status))


async def _save_credential(
    write: Callable[[str], Any], value: str, *, what: str, folder: Any, file_env: str
) -> web.Response | None:
    """Write a credential file in a worker thread; the error answer, or None once it is saved. The value
    itself never appears in an answer or a log line (validation messages show only its masked form)."""
    try:
        await _in_thread(write, value)
    except errors.InputRejected as exc:
        return _error(400, exc.message, reason_for(exc))
    except OSError as exc:
        log.warning("Runflow: could not save %s in %s: %s", what, folder, exc)
        return _error(
            500,
            f"Could not save {what} in {folder}: {exc.strerror or exc}. Check that the folder is yours and "
            f"writable, or set {file_env} to a file in a private folder.",
            "write_failed",
        )
    return None


@state_changing
async def delete_key(request: web.Request, body: dict[str, Any]) -> web.Response:
    if config.key_source() == "env":
        return _env_key_conflict()
    if await _in_thread(config.delete_key_file):
        log.info("Runflow: stored API key removed")
    return web.json_response(await _in_thread(key_status))


@state_changing
async def post_test(request: web.Request, body: dict[str, Any]) -> web.Response:
    mode = body.get("mode") or service.current_mode()
    if mode not in service.MODES:
        return _error(400, f"Unknown mode {mode!r}; use one of {', '.join(service.MODES)}.", "bad_request")
    return web.json_response(await _in_thread(connection_test, mode))


async def get_ledger(request: web.Request) -> web.Response:
    return web.json_response(await _in_thread(ledger_totals))


async def get_mode(request: web.Request) -> web.Response:
    return web.json_response(mode_status())


@state_changing
async def post_mode(request: web.Request, body: dict[str, Any]) -> web.Response:
    if mode_status()["locked"]:
        return _error(
            409,
            f"The service is pinned by the environment variable {service.MODE_ENV}; unset it and restart "
            "ComfyUI to switch here.",
            "env_mode",
        )
    try:
        await _in_thread(service.set_mode, body.get("mode"))
    except errors.InputRejected as exc:
        return _error(400, exc.message, "bad_request")
    log.info("Runflow: service mode set to %s", body.get("mode"))
    return web.json_response(mode_status())


async def get_shared_store(request: web.Request) -> web.Response:
    return web.json_response(await _in_thread(shared_store_status))


async def get_price(request: web.Request) -> web.Response:
    return web.json_response({"per_image": f"{product_isolation.PRICE_PER_IMAGE:.2f}", "currency": "USD"})


# -- callbacks: Runflow's run-ended POSTs, and the secret that signs them ---------------------------------


def callback_status() -> dict[str, Any]:
    """What the browser may know about callbacks: whether a secret is stored (masked), where from, the
    public URL, and whether callbacks are on (both set). An unusable setting is reported, not raised."""
    source = config.callback_secret_source()
    if source == "env":
        secret: str | None = os.environ.get(config.CALLBACK_SECRET_ENV, "").strip()
    else:
        secret = secret_files.read_secret_file(config.callback_secret_path())
    status: dict[str, Any] = {
        "configured": source is not None,
        "masked": config.mask_secret(secret) if secret else None,
        "source": source,
        "public_url": None,
        "active": False,
        "error": None,
    }
    try:
        settings = callbacks.configured_settings()
        status["public_url"] = service_address.public_url()
    except errors.InputRejected as exc:
        status["error"] = exc.message
        return status
    status["active"] = settings is not None
    return status


async def get_callback_secret(request: web.Request) -> web.Response:
    return web.json_response(await _in_thread(callback_status))


def _env_secret_conflict() -> web.Response:
    return _error(
        409,
        f"The callback secret comes from the environment variable {config.CALLBACK_SECRET_ENV}, which takes "
        "precedence over one saved here. Change or unset it where ComfyUI is started, then restart ComfyUI.",
        "env_secret",
    )


@state_changing
async def post_callback_secret(request: web.Request, body: dict[str, Any]) -> web.Response:
    if config.callback_secret_source() == "env":
        return _env_secret_conflict()
    secret = body.get("secret")
    if not isinstance(secret, str):
        return _error(400, 'Send the secret as {"secret": "whsec_..."}.', "bad_request")
    refused = await _save_credential(config.write_callback_secret_file, secret, what="the callback secret",
                                     folder=config.callback_secret_path().parent,
                                     file_env=config.CALLBACK_SECRET_FILE_ENV)
    if refused is not None:
        return refused
    log.info("Runflow: callback secret %s saved (mode 0600)", config.mask_secret(secret.strip()))
    return web.json_response(await _in_thread(callback_status))


@state_changing
async def delete_callback_secret(request: web.Request, body: dict[str, Any]) -> web.Response:
    if config.callback_secret_source() == "env":
        return _env_secret_conflict()
    if await _in_thread(config.delete_callback_secret_file):
        log.info("Runflow: stored callback secret removed")
    return web.json_response(await _in_thread(callback_status))


def _callback_secrets() -> tuple[str, ...]:
    """The secret(s) a delivery may be signed with; none (so every delivery is refused) when unset or bad."""
    try:
        secret = config.resolve_callback_secret()
    except errors.InputRejected:
        return ()
    return (secret,) if secret else ()


async def _body_within(request: web.Request, limit: int) -> bytes | None:
    """The raw body, or None when it is longer than `limit` (read no further than that)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


async def post_callback(request: web.Request) -> web.Response:
    """Runflow's POST when a run ends. Not guarded by Host or Origin like the browser's routes: it comes
    from the internet by the public name, and its signature over the raw body is what makes it genuine."""
    body = await _body_within(request, callbacks.MAX_BODY_BYTES)
    answer = callbacks.too_large() if body is None else callbacks.receive(
        body, request.headers.get(callbacks.SIGNATURE_HEADER), await _in_thread(_callback_secrets))
    return web.json_response(answer.body, status=answer.status)


def add_routes(routes: web.RouteTableDef) -> None:
    """Put every /runflow/ route on a route table (ComfyUI's, or a test app's)."""
    routes.get("/runflow/key")(readable(get_key))
    routes.post("/runflow/key")(post_key)
    routes.delete("/runflow/key")(delete_key)
    routes.post("/runflow/test")(post_test)
    routes.get("/runflow/ledger")(readable(get_ledger))
    routes.get("/runflow/mode")(readable(get_mode))
    routes.post("/runflow/mode")(post_mode)
    routes.get("/runflow/price")(readable(get_price))
    routes.get("/runflow/shared-store")(readable(get_shared_store))
    routes.get("/runflow/callback-secret")(readable(get_callback_secret))
    routes.post("/runflow/callback-secret")(post_callback_secret)
    routes.delete("/runflow/callback-secret")(delete_callback_secret)
    routes.post(callbacks.CALLBACK_PATH)(post_callback)


def _register_with_comfyui() -> None:
    try:
        from server import PromptServer  # ComfyUI's own module; absent outside ComfyUI
    except ImportError:
        return
    if getattr(PromptServer, "instance", None) is not None:
        add_routes(PromptServer.instance.routes)
        wakeups.shared_wakeups().attach_receiver()  # POST /runflow/callback now wakes this process's runs


_register_with_comfyui()
