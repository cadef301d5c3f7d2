"""Everything the emulator remembers: assets, stored bytes, runs, the balance, idempotency keys, counters.

Request threads share it, so every change happens under one lock and stays short (no image work and no
I/O inside it). Money is whole cents, held when a run is created and charged only when the run ends with
a result; the hold is what keeps concurrent creates from spending the same credit twice.
"""

from __future__ import annotations

import heapq
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .lifecycle import PRICE_CENTS, RunRecord
from .views import Problem, Reply

STAT_KEYS = (
    "requests",  # every request received, whatever its answer
    "asset_uploads",  # step 1: upload slots handed out
    "uploads",  # step 2: presigned PUTs stored
    "confirmations",  # step 3: uploads confirmed
    "creates",  # runs created (idempotent replays excluded)
    "idempotent_replays",  # creates answered from the Idempotency-Key store
    "polls",  # run reads answered
    "downloads",  # file (asset or output) bytes served
    "rate_limited",  # 429s injected by Faults.rate_limit_burst
    "injected_errors",  # errors injected by Faults.error_rate
    "dropped",  # connections closed without an answer by Faults.drop_rate
    "callbacks",  # callback POSTs sent (every attempt, retries and duplicates included)
    "callbacks_delivered",  # callback POSTs answered 2xx
    "callbacks_failed",  # callback POSTs answered otherwise, or not answered at all
    "callbacks_dropped",  # callbacks never sent, by Faults.callback_drop_rate
)
IDEMPOTENCY_MEMORY = 10_000  # keys remembered; the oldest are forgotten first


def asset_file_key(asset_id: str) -> str:
    return f"asset:{asset_id}"


def output_file_key(run_id: str, number: int = 1) -> str:
    return f"output:{run_id}" if number == 1 else f"output:{run_id}.{number}"


def output_file_id(run_id: str, number: int) -> str:
    """The id in a run's output URL: the run id for the first image, `<run id>.<n>` for the n-th."""
    return run_id if number == 1 else f"{run_id}.{number}"


def uuid7() -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, variant 10, 74 random bits; what Runflow's
    run ids look like, and time-ordered like them."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class ByteStore:
    """Uploaded inputs and rendered outputs within a byte budget, least recently used dropped first.

    The in-process emulator lives as long as ComfyUI does; without a bound, a day of 4K images would
    hold gigabytes. Outputs go first, since a dropped output is rendered again on demand (the stand-in
    model is deterministic, given its input); an input goes only when outputs alone cannot make room,
    and then answers like an expired storage object.
    """

    def __init__(self, budget_bytes: int) -> None:
        self._budget = budget_bytes
        self._outputs: OrderedDict[str, bytes] = OrderedDict()
        self._inputs: OrderedDict[str, bytes] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes, *, recomputable: bool) -> None:
        with self._lock:
            items = self._outputs if recomputable else self._inputs
            old = items.pop(key, None)
            self._total += len(data) - (len(old) if old is not None else 0)
            items[key] = data
            for pool in (self._outputs, self._inputs):
                while self._total > self._budget and pool and next(iter(pool)) != key:
                    _, dropped = pool.popitem(last=False)
                    self._total -= len(dropped)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            for pool in (self._outputs, self._inputs):
                data = pool.get(key)
                if data is not None:
                    pool.move_to_end(key)
                    return data
            return None


@dataclass
class Asset:
    """An input image slot: created by step 1, filled by the PUT, usable once confirmed."""

    id: str
    name: str
    mime_type: str
    size_bytes: int
    created_at_unix: float
    uploaded: bool = False
    confirmed: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "mime_type": self.mime_type,
            "size_bytes": self.size_bytes,
            "uploaded": self.uploaded,
            "confirmed": self.confirmed,
        }


class EmulatorState:
    """The emulator's memory; every method is safe to call from any request thread."""

    def __init__(self, *, balance_cents: int, low_balance_threshold_cents: int, max_stored_bytes: int) -> None:
        self.lock = threading.RLock()
        self.stats: dict[str, int] = dict.fromkeys(STAT_KEYS, 0)
        self.assets: dict[str, Asset] = {}
        self.runs: dict[str, RunRecord] = {}
        self.files = ByteStore(max_stored_bytes)
        self.low_balance_threshold_cents = low_balance_threshold_cents
        self._balance_cents = balance_cents
        self._held_cents = 0
        self._unsettled: list[tuple[float, str]] = []  # heap of (completed_at_monotonic, run id)
        self._idempotency: OrderedDict[str, tuple[str, Reply]] = OrderedDict()

    # -- counters ---------------------------------------------------------------------------------------

    def count(self, key: str) -> None:
        with self.lock:
            self.stats[key] += 1

    def count_poll(self, run: RunRecord) -> None:
        with self.lock:
            self.stats["polls"] += 1
            run.polls += 1

    def reset_stats(self) -> None:
        """Zero the counters in place, so references to `stats` stay live."""
        with self.lock:
            for key in self.stats:
                self.stats[key] = 0

    # -- assets ---------------------------------------------------------------------------------------

    def add_asset(self, asset: Asset) -> None:
        with self.lock:
            self.assets[asset.id] = asset
            self.stats["asset_uploads"] += 1

    def asset(self, asset_id: str) -> Asset:
        with self.lock:
            asset = self.assets.get(asset_id)
        if asset is None:
            raise Problem(404, f"No asset {asset_id} exists for this key.", code="ASSET_NOT_FOUND")
        return asset

    def store_upload(self, asset: Asset, data: bytes) -> None:
        """The presigned PUT: bytes may be replaced until the upload is confirmed, never after."""
        with self.lock:
            if asset.confirmed:
                raise Problem(
                    409,
                    f"Asset {asset.id} is already confirmed; its bytes cannot change.",
                    code="ASSET_ALREADY_CONFIRMED",
                )
            self.files.put(asset_file_key(asset.id), data, recomputable=False)
            asset.uploaded = True
            self.stats["uploads"] += 1

    def confirm(self, asset_id: str) -> Asset:
        asset = self.asset(asset_id)
        with self.lock:
            if not asset.uploaded:
                raise Problem(
                    409,
                    f"Asset {asset_id} has no uploaded bytes yet: PUT them to the upload_url first.",
                    code="UPLOAD_INCOMPLETE",
                )
            asset.confirmed = True
            self.stats["confirmations"] += 1
        return asset

    def confirmed_asset(self, asset_id: str) -> Asset:
        asset = self.asset(asset_id)
        if not asset.confirmed:
            raise Problem(404, f"Asset {asset_id} is not confirmed yet.", code="ASSET_NOT_FOUND")
        return asset

    # -- money ------------------------------------------------------------------------------------------

    def _settle(self, now: float) -> None:
        """Charge or release the hold of every run that has ended by `now`, in completion order."""
        while self._unsettled and self._unsettled[0][0] <= now:
            _, run_id = heapq.heappop(self._unsettled)
            run = self.runs[run_id]
            self._held_cents -= PRICE_CENTS
            if run.succeeded:
                self._balance_cents -= PRICE_CENTS
            run.billing_settled = True

    def balance_cents(self) -> int:
        with self.lock:
            self._settle(time.monotonic())
            return self._balance_cents

    def add_run(self, run: RunRecord) -> None:
        """Register a new run, holding its price; 402 when the credit not already held cannot cover it."""
        with self.lock:
            self._settle(run.created_at_monotonic)
            if self._balance_cents - self._held_cents < PRICE_CENTS:
                raise Problem(402, "Your credit balance is too low to start this run; top it up and try again.")
            self._held_cents += PRICE_CENTS
            self.runs[run.id] = run
            heapq.heappush(self._unsettled, (run.completed_at_monotonic, run.id))
            self.stats["creates"] += 1

    def get_run(self, run_id: str) -> RunRecord:
        with self.lock:
            self._settle(time.monotonic())
            run = self.runs.get(run_id)
        if run is None:
            raise Problem(404, f"No run {run_id} exists for this key.", code="RUN_NOT_FOUND")
        return run

    # -- idempotency ------------------------------------------------------------------------------------

    def idempotent(self, key: str | None, fingerprint: str, produce: Callable[[], Reply]) -> Reply:
        """Answer a create once per Idempotency-Key: the same key and body replay the first 2xx answer,
        the same key with another body is a 409. Check, create and remember happen under one lock, so two
        concurrent retries of one create cannot both create."""
        if key is None:
            return produce()
        with self.lock:
            remembered = self._idempotency.get(key)
            if remembered is not None:
                if remembered[0] != fingerprint:
                    raise Problem(
                        409,
                        "This Idempotency-Key was already used with a different request body.",
                        code="IDEMPOTENCY_KEY_REUSED",
                    )
                self.stats["idempotent_replays"] += 1
                return remembered[1]
            reply = produce()
            if 200 <= reply.status < 300:
                self._idempotency[key] = (fingerprint, reply)
                while len(self._idempotency) > IDEMPOTENCY_MEMORY:
                    self._idempotency.popitem(last=False)
            return reply
