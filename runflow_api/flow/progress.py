"""Turns a stream of progress events into the counts and the one-line status a person reads.

The ComfyUI node shows this line on the node about once a second and the CLI beside its bar, so both
say the same thing in the same words.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from decimal import Decimal

from ..pictures.result_types import ProgressEvent


@dataclass(frozen=True)
class TallySnapshot:
    total: int
    done: int
    cached: int
    resumed: int
    failed: int
    queued: int
    running: int
    cost: Decimal
    elapsed_s: float
    emulator: bool
    waiting: int = 0  # items whose input another process is producing; they take its result
    waiting_for_machine: int = 0  # of those, the ones another machine of the fleet is producing
    shared: int = 0  # cached results the fleet's shared store supplied
    waited_for_machine: int = 0  # cached results another machine produced while this one waited

    @property
    def finished(self) -> int:
        return self.done + self.cached + self.failed

    def status_line(self) -> str:
        parts = [f"{self.finished}/{self.total} done"]
        if self.running:
            parts.append(f"{self.running} running")
        if self.queued:
            parts.append(f"{self.queued} queued")
        if self.waiting - self.waiting_for_machine:
            parts.append(f"{self.waiting - self.waiting_for_machine} waiting for another process")
        if self.waiting_for_machine:
            parts.append(f"{self.waiting_for_machine} waiting for another machine")
        if self.cached:
            fleet = [f"{self.shared} shared"] if self.shared else []
            fleet += [f"{self.waited_for_machine} after waiting for another machine"] if self.waited_for_machine else []
            parts.append(f"{self.cached} cached" + (f" ({', '.join(fleet)})" if fleet else ""))
        if self.resumed:
            parts.append(f"{self.resumed} resumed")
        if self.failed:
            parts.append(f"{self.failed} failed")
        parts.append(f"{self.elapsed_s:.0f}s")
        parts.append("emulator, $0.00" if self.emulator else f"${self.cost:.2f}")
        return " · ".join(parts)


class ProgressTally:
    """Thread-safe: events arrive from the batch's worker threads."""

    def __init__(self, total: int, *, emulator: bool = False) -> None:
        self.total = total
        self.emulator = emulator
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._status: dict[int, str] = {}
        self._done: set[int] = set()
        self._cached: set[int] = set()
        self._failed: set[int] = set()
        self._resumed: set[int] = set()
        self._provenance: dict[int, str] = {}
        self._cost = Decimal(0)

    def update(self, event: ProgressEvent) -> None:
        with self._lock:
            if event.kind == "created":
                self._status[event.index] = event.status or "queued"
            elif event.kind == "resumed":
                self._resumed.add(event.index)
                self._status[event.index] = "queued"
            elif event.kind == "waiting":
                self._status[event.index] = f"waiting:{event.detail or 'process'}"
            elif event.kind == "status" and event.status:
                self._status[event.index] = event.status
            elif event.kind == "cached":
                self._cached.add(event.index)
                self._status.pop(event.index, None)
                if event.detail:
                    self._provenance[event.index] = event.detail
            elif event.kind == "done":
                self._done.add(event.index)
                self._status.pop(event.index, None)
                if event.cost is not None:
                    self._cost += event.cost
            elif event.kind == "failed":
                self._failed.add(event.index)
                self._status.pop(event.index, None)

    def snapshot(self) -> TallySnapshot:
        with self._lock:
            states = list(self._status.values())
            return TallySnapshot(
                total=self.total,
                done=len(self._done),
                cached=len(self._cached),
                resumed=len(self._resumed),
                failed=len(self._failed),
                queued=sum(1 for s in states if s in ("queued", "dispatching")),
                running=sum(1 for s in states if s == "running"),
                waiting=sum(1 for s in states if s.startswith("waiting:")),
                waiting_for_machine=states.count("waiting:machine"),
                shared=sum(1 for p in self._provenance.values() if p == "shared"),
                waited_for_machine=sum(1 for p in self._provenance.values() if p == "waited:machine"),
                cost=self._cost,
                elapsed_s=time.monotonic() - self._started,
                emulator=self.emulator,
            )
