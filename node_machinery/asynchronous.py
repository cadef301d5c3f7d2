"""Running a node's blocking work off ComfyUI's event loop, so several Runflow nodes of one graph wait
for the service at the same time.

ComfyUI (0.3.45+) runs a node whose `execute` is a coroutine as a task and goes on with the other ready
nodes meanwhile; the engine underneath stays synchronous and threaded, so the V3 nodes hand it to a
thread here. The thread gets a copy of the task's context, so ComfyUI's executing-node context (prompt
and node ids, read by the progress hook and the run metadata) is the same as on the task.

A thread cannot be killed. When ComfyUI cancels the task (another node's Cancel or error ended the
prompt, and `asyncio.run` cancels what is left), the work is told to stop through `abandoned()`, which
the node's Cancel check reads every 50 ms, and the task waits for it before it lets the cancellation
through: no engine thread outlives its prompt, and runs already created stay journaled as on any Cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

_ABANDONED: ContextVar[threading.Event | None] = ContextVar("runflow_abandoned", default=None)


def abandoned() -> bool:
    """True in work started by `off_loop` once its task has been cancelled."""
    event = _ABANDONED.get()
    return event is not None and event.is_set()


async def off_loop(work: Callable[[], T]) -> T:
    """`work()` on a thread of the loop's default executor; its result, or its exception, on the task."""
    stop = threading.Event()
    token = _ABANDONED.set(stop)
    try:
        thread = asyncio.ensure_future(asyncio.to_thread(work))  # the new task copies the context, `stop` too
    finally:
        _ABANDONED.reset(token)
    try:
        return await asyncio.shield(thread)
    except asyncio.CancelledError:
        stop.set()
        with contextlib.suppress(BaseException):  # the work ends as a Cancel; the task's cancellation wins
            await thread
        raise
