"""POST /runflow/callback: Runflow's run-ended deliveries, checked by their signature, waking the run's waiter.

Not guarded by Host or Origin like the browser's routes: a delivery comes from the internet by the public
name, and its signature over the raw body is what makes it genuine. The body is read no further than
`callbacks.MAX_BODY_BYTES`; `callbacks.receive` decides the answer.
"""

from __future__ import annotations

from aiohttp import web

from ..runflow_api import errors
from ..runflow_api.service import callbacks
from ..runflow_api.settings import config
from .answers import in_thread


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
        body, request.headers.get(callbacks.SIGNATURE_HEADER), await in_thread(_callback_secrets))
    return web.json_response(answer.body, status=answer.status)
