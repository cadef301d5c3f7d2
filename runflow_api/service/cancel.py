"""Cancel: the contract every waiting loop keeps (`should_cancel` asked at least every 50 ms), and a sleep keeping it.

A user's Cancel in ComfyUI, a Ctrl-C in the CLI or a script's own flag reaches the engine as a
`should_cancel()` callable; nothing that waits (a backoff, a poll interval, a run slot, a claim, the
team budget) may sleep longer than `CANCEL_TICK_S` without asking it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..errors import RunflowCancelled

CancelCheck = Callable[[], bool]
CANCEL_TICK_S = 0.05  # the contract: should_cancel is polled at least every 50 ms


def cancellable_sleep(seconds: float, should_cancel: CancelCheck | None, wake: threading.Event | None = None) -> bool:
    """Sleep, waking every 50 ms to honour a cancel so the caller is never stuck behind a backoff; with
    `wake`, return True as soon as that event is set (a run's callback), False when the time is up."""
    deadline = time.monotonic() + seconds
    while True:
        if should_cancel is not None and should_cancel():
            raise RunflowCancelled("Cancelled while waiting.")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        step = min(CANCEL_TICK_S, remaining)
        if wake is None:
            time.sleep(step)
        elif wake.wait(step):
            return True
