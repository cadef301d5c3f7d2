"""What the route tests share: the pack's routes/ imported outside ComfyUI on the installed engine, and an
aiohttp application serving them."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import types
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import runflow_api

PACK_DIR = Path(__file__).resolve().parents[1]


def load_routes(name: str = "runflow_routes_under_test") -> types.ModuleType:
    """Import routes/ outside ComfyUI (it must not need ComfyUI), as a subpackage of a stand-in pack whose
    engine is the installed runflow_api: the routes and these tests then share one engine (its error
    classes, its wakeup registry). Every engine module is imported first, so the routes' relative
    imports (`..runflow_api.x`, `..runflow_api.x.y`) find them all there instead of loading second copies."""
    for module in pkgutil.walk_packages(runflow_api.__path__, "runflow_api."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    pack = types.ModuleType(name)
    pack.__path__ = [str(PACK_DIR)]
    sys.modules[name] = pack
    for loaded in [module for module in sys.modules if module == "runflow_api" or module.startswith("runflow_api.")]:
        sys.modules[f"{name}.{loaded}"] = sys.modules[loaded]
    return importlib.import_module(f"{name}.routes")


routes = load_routes()


def make_app() -> web.Application:
    table = web.RouteTableDef()
    routes.add_routes(table)
    app = web.Application()
    app.add_routes(table)
    return app


class Answer:
    """What a route answered."""

    def __init__(self, status: int, text: str, body: Any) -> None:
        self.status = status
        self.text = text
        self.body = body


async def request(method: str, path: str, **kwargs: Any) -> Answer:
    """One request to a fresh server with the routes; the answer's status, text and JSON body."""
    async with TestClient(TestServer(make_app())) as client:
        response = await client.request(method, path, **kwargs)
        text = await response.text()
        body = await response.json() if response.content_type == "application/json" else None
        return Answer(response.status, text, body)
