"""The service routes of the settings panel: test the connection, switch real or emulator, price, spend, fleet.

Everything here is read from the engine (`service`, the ledger, the fleet's store) and shaped for the
panel; the connection test answers within seconds and says exactly what happened, instead of retrying
for a minute.
"""

from __future__ import annotations

import logging
import os
from decimal import Decimal
from typing import Any

from aiohttp import web

from ..runflow_api import errors, fleet, product_isolation
from ..runflow_api import service_choice as service
from ..runflow_api.money import ledger
from ..runflow_api.service import address as service_address
from ..runflow_api.service import http
from ..runflow_api.settings import directories
from .answers import error_response, in_thread, reason_for
from .guards import state_changing

log = logging.getLogger("runflow_api.routes")  # one logger for every route module

# A connection test answers within seconds and says exactly what happened, instead of retrying for a minute.
TEST_RETRY = http.RetryPolicy(attempts=1)
TEST_TIMEOUTS = http.Timeouts(connect=5.0, read=15.0)


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
    user: dict[str, Any] = me["user"] if isinstance(me.get("user"), dict) else me
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
        "mode": service_address.current_mode(),
        "modes": list(service_address.MODES),
        "locked": os.environ.get(service_address.MODE_ENV, "").strip().lower() in service_address.MODES,
    }


@state_changing
async def post_test(request: web.Request, body: dict[str, Any]) -> web.Response:
    mode = body.get("mode") or service_address.current_mode()
    if mode not in service_address.MODES:
        known = ", ".join(service_address.MODES)
        return error_response(400, f"Unknown mode {mode!r}; use one of {known}.", "bad_request")
    return web.json_response(await in_thread(connection_test, mode))


async def get_ledger(request: web.Request) -> web.Response:
    return web.json_response(await in_thread(ledger_totals))


async def get_mode(request: web.Request) -> web.Response:
    return web.json_response(mode_status())


@state_changing
async def post_mode(request: web.Request, body: dict[str, Any]) -> web.Response:
    if mode_status()["locked"]:
        return error_response(
            409,
            f"The service is pinned by the environment variable {service_address.MODE_ENV}; unset it and restart "
            "ComfyUI to switch here.",
            "env_mode",
        )
    try:
        await in_thread(service_address.set_mode, body.get("mode"))
    except errors.InputRejected as exc:
        return error_response(400, exc.message, "bad_request")
    log.info("Runflow: service mode set to %s", body.get("mode"))
    return web.json_response(mode_status())


async def get_shared_store(request: web.Request) -> web.Response:
    return web.json_response(await in_thread(shared_store_status))


async def get_price(request: web.Request) -> web.Response:
    return web.json_response({"per_image": f"{product_isolation.PRICE_PER_IMAGE:.2f}", "currency": "USD"})
