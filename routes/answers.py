"""How a route answers: a JSON error the browser can branch on, and blocking work off ComfyUI's event loop.

Every route module answers errors through `error_response` with a stable `reason` code (`reason_for` maps
the engine's exceptions to it; the engine's message says the rest), and runs blocking work (HTTP to
Runflow, file writes with fsync, starting the emulator) through `in_thread`, so ComfyUI's event loop
never stalls.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..runflow_api import errors

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


def reason_for(exc: BaseException) -> str:
    """A stable code the browser can branch on; the engine's message says the rest."""
    for kind, reason in REASONS:
        if isinstance(exc, kind):
            return reason
    return "error"


def error_response(status: int, message: str, reason: str) -> web.Response:
    """`{"error": {"reason", "message"}}` with `status`: what every route answers when it refuses."""
    return web.json_response({"error": {"reason": reason, "message": message}}, status=status)


async def in_thread(func: Callable[..., Any], *args: Any) -> Any:
    """`func(*args)` in a worker thread, awaited: blocking work never runs on ComfyUI's event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(func, *args))
