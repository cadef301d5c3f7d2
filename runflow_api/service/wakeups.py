"""Waking the waiter of a run when its callback arrives: a process-wide registry keyed by run id.

`wait_for_run` sleeps on a `Wakeup` instead of a plain sleep; a receiver calls `notify(run_id)`. A
callback can arrive before its waiter registers (a short run, a slow create answer), so the last few
thousand notified run ids are remembered and a late registration starts out woken.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from .cancel import CancelCheck, cancellable_sleep

_REMEMBERED = 4096
MIN_WAKE_INTERVAL_S = 1.0


class Wakeup:
    """One waiter's alarm: `wait` returns early, True, once its run's callback came in.

    Each wake-up costs its waiter a read of the run, and a genuine callback can be replayed by anyone who
    saw it, as often as they like: so a waiter wakes at most once per `MIN_WAKE_INTERVAL_S`, and every
    callback in between is merged into that one wake-up (delayed, never dropped)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._event = threading.Event()
        self._woken_at = -math.inf

    def set(self) -> None:
        self._event.set()

    def wait(self, seconds: float, should_cancel: CancelCheck | None = None) -> bool:
        """Sleep up to `seconds`; True when woken (the flag is then cleared for the next wait), but not
        sooner than MIN_WAKE_INTERVAL_S after the previous wake-up."""
        deadline = time.monotonic() + seconds
        if not cancellable_sleep(seconds, should_cancel, wake=self._event):
            return False
        hold = min(self._woken_at + MIN_WAKE_INTERVAL_S, deadline) - time.monotonic()
        if hold > 0:
            cancellable_sleep(hold, should_cancel)
        self._event.clear()
        self._woken_at = time.monotonic()
        return True


class Wakeups:
    """Run id -> waiting Wakeups, plus the recently notified ids; `receiving` counts live receivers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, list[Wakeup]] = {}
        self._notified: OrderedDict[str, float] = OrderedDict()
        self._receivers = 0

    @contextmanager
    def register(self, run_id: str) -> Iterator[Wakeup]:
        wakeup = Wakeup(run_id)
        with self._lock:
            self._waiting.setdefault(run_id, []).append(wakeup)
            if run_id in self._notified:
                wakeup.set()
        try:
            yield wakeup
        finally:
            with self._lock:
                waiters = self._waiting.get(run_id, [])
                if wakeup in waiters:
                    waiters.remove(wakeup)
                if not waiters:
                    self._waiting.pop(run_id, None)

    def notify(self, run_id: str) -> bool:
        """Wake every waiter of `run_id`; True when there was one. Repeats are harmless."""
        with self._lock:
            self._notified[run_id] = time.monotonic()
            self._notified.move_to_end(run_id)
            while len(self._notified) > _REMEMBERED:
                self._notified.popitem(last=False)
            waiters = list(self._waiting.get(run_id, []))
        for wakeup in waiters:
            wakeup.set()
        return bool(waiters)

    @contextmanager
    def receiver(self) -> Iterator[None]:
        """Mark that this process receives callbacks while the block runs (a CLI receiver)."""
        self.attach_receiver()
        try:
            yield
        finally:
            with self._lock:
                self._receivers -= 1

    def attach_receiver(self) -> None:
        """For a receiver that lives as long as the process (ComfyUI's route)."""
        with self._lock:
            self._receivers += 1

    @property
    def receiving(self) -> bool:
        with self._lock:
            return self._receivers > 0


_shared = Wakeups()


def shared_wakeups() -> Wakeups:
    """The process's one registry: the receivers and every client's waiters meet here."""
    return _shared
