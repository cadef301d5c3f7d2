"""What every image's path shares within one client: the Engine (transport, stores, claims), a Job, run slots.

The path itself is in `pipeline.py` (and `preparation.py`, `paid_runs.py`); this module only defines
the values it passes along, so each step can be read and tested on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..errors import RunflowCancelled
from ..fleet import Fleet
from ..money.cache import ResultCache
from ..money.claims import Claims
from ..money.durations import DurationModel
from ..money.journal import RunJournal
from ..money.ledger import Ledger
from ..money.recent import RecentResults
from ..pictures import images
from ..product_isolation import IsolationParams
from ..service.callbacks import CallbackSettings
from ..service.cancel import CancelCheck
from ..service.http import Transport
from ..service.runs import PollPolicy

Emit = Callable[..., None]


class RunSlots:
    """Bounds the runs in flight (created and not yet finished), not the threads: other items' uploads
    and downloads then overlap the waiting, and `concurrency` means what the user thinks it means."""

    def __init__(self, limit: int) -> None:
        self._semaphore = threading.BoundedSemaphore(limit)

    @contextmanager
    def hold(self, should_cancel: CancelCheck) -> Iterator[None]:
        while not self._semaphore.acquire(timeout=0.05):
            if should_cancel():
                raise RunflowCancelled("Cancelled while waiting for a free run slot.")
        try:
            yield
        finally:
            self._semaphore.release()


@dataclass
class Engine:
    """What every image's path shares within one client: the transport, the stores and the claims."""

    transport: Transport
    cache: ResultCache | None
    journal: RunJournal
    claims: Claims
    ledger: Ledger
    durations: DurationModel
    poll: PollPolicy
    service_id: str
    model_id: str
    slots: RunSlots
    recent: RecentResults | None = None
    fleet: Fleet | None = None
    max_output_pixels: int = 8192 * 8192
    max_output_bytes: int = 256 * 1024 * 1024
    callbacks: CallbackSettings | None = None  # on: creates carry callback_url, waits wake on the callback


@dataclass(frozen=True)
class Job:
    """One validated input, ready to run: its resolved parameters and its cache key."""

    index: int
    params: IsolationParams
    cache_key: str
    array: np.ndarray | None = None
    source_url: str | None = None
    encoded: images.EncodedImage | None = None
    metadata: dict[str, str] | None = None  # what the create carries for the dashboard; not in the cache key
    input_size: tuple[int, int] | None = None  # (width, height) of the pixels read: the `enlarged` QA flag
    # Gives this job with its pixels, for a job prepared or kept without them (its key known from the fleet,
    # or set aside): called only when this process is to produce the result.
    reload: Callable[[], Job] | None = field(default=None, compare=False, repr=False)
