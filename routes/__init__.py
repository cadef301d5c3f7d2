"""The pack's server routes under /runflow/..., the only way the browser side (web/) reaches the engine.

The browser never talks to Runflow itself (the API sends no CORS headers) and never holds the key. One
module per job: `guards` (which requests may reach a route: Host, Origin, JSON), `answers` (error
answers, work off the event loop), `credentials` (the key and the callback secret), `status` (connection
test, service mode, price, spend, fleet store) and `callback` (Runflow's run-ended deliveries).

Handlers are registered on ComfyUI's route table at import when a PromptServer exists; tests build their
own aiohttp app with `add_routes`.
"""

from __future__ import annotations

from aiohttp import web

from ..runflow_api.service import callbacks, wakeups
from .callback import post_callback
from .credentials import (
    delete_callback_secret,
    delete_key,
    get_callback_secret,
    get_key,
    post_callback_secret,
    post_key,
)
from .guards import readable
from .status import get_ledger, get_mode, get_price, get_shared_store, post_mode, post_test


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
