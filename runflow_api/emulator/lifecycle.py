"""One run's life, computed from its timestamps: no thread or timer exists per run.

A run created at t0 with latency L is `queued` until t0+0.1L, `dispatching` until t0+0.2L, `running` until
t0+L, then in the terminal status chosen at creation. Deciding the ending at creation (forced outcome,
failure draw, unfetchable or undecodable input) means a run never changes its mind after it was seen,
and billing can settle it without looking at pixels.

Times are `time.monotonic()` seconds. A benchmark in the same machine compares its own monotonic clock
with `completed_at_monotonic` to measure how late the client noticed the end of a run.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..product_isolation import PRICE_PER_IMAGE
from .views import dollars, iso, output_object

PRICE_CENTS = int(PRICE_PER_IMAGE * 100)  # money is kept in whole cents: balances never drift

SUCCESS_STATUSES = frozenset({"succeeded", "partial_succeeded"})
# (share of the latency at which the stage starts, status, log line)
STAGES: tuple[tuple[float, str, str], ...] = (
    (0.0, "queued", "Run created and queued."),
    (0.1, "dispatching", "Dispatching to a worker."),
    (0.2, "running", "Running runflow/product-isolation."),
)


@dataclass(frozen=True)
class Failure:
    """Why a run ends without a result; `stage` is what the API calls `failure_stage_code`."""

    code: str
    message: str
    stage: str


# The failures a forced or drawn outcome carries, per terminal status.
OUTCOME_FAILURES: dict[str, Failure] = {
    "failed": Failure("MODEL_ERROR", "The model could not isolate a product in this image.", "inference"),
    "canceled": Failure("RUN_CANCELED", "The run was canceled before it finished.", "inference"),
    "cancelled": Failure("RUN_CANCELLED", "The run was cancelled before it finished.", "inference"),
    "errored": Failure("INTERNAL_ERROR", "The worker stopped unexpectedly while running the model.", "inference"),
}


@dataclass
class RunRecord:
    """A run as the emulator keeps it; `status` is always the status as of now."""

    id: str
    model: str
    input: dict[str, Any]
    metadata: Any
    client_ref: Any
    callback_url: Any
    created_at_monotonic: float
    created_at_unix: float
    latency: float
    terminal_status: str
    failure: Failure | None
    source_id: str | None  # the emulator file the input image comes from; None when it cannot be fetched
    canvas: tuple[int, int]
    output_count: int = 1  # images a successful run returns (Faults.output_count at creation)
    polls: int = 0  # reads of this run answered (GET /v1/runs/{id}): "polls per run" in tests and benchmarks
    billing_settled: bool = False
    output_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def completed_at_monotonic(self) -> float:
        """The monotonic moment the run became terminal (whether or not anyone has looked yet)."""
        return self.created_at_monotonic + self.latency

    @property
    def created_at(self) -> float:
        """For assertions this is the monotonic time; the API shows ISO strings instead."""
        return self.created_at_monotonic

    @property
    def completed_at(self) -> float:
        """For assertions this is the monotonic time; the API shows ISO strings instead."""
        return self.completed_at_monotonic

    def __getitem__(self, key: str) -> Any:
        """Dict-style reads for tests and benchmarks: `emu.runs[run_id]["status"]`."""
        if key not in READABLE_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    @property
    def succeeded(self) -> bool:
        """Whether the run ends with a result (and is billed); says nothing about whether it ended yet."""
        return self.terminal_status in SUCCESS_STATUSES

    def elapsed(self, now: float) -> float:
        return now - self.created_at_monotonic

    def stage_index(self, now: float) -> int:
        """0..2 for the STAGES, 3 once terminal. At creation time a run is always `queued`, even at L=0."""
        elapsed = self.elapsed(now)
        if elapsed <= 0:
            return 0
        if elapsed >= self.latency:
            return len(STAGES)
        return max(i for i, (share, _, _) in enumerate(STAGES) if elapsed >= share * self.latency)

    def status_at(self, now: float) -> str:
        index = self.stage_index(now)
        return self.terminal_status if index == len(STAGES) else STAGES[index][1]

    @property
    def status(self) -> str:
        return self.status_at(time.monotonic())

    def is_done_with_result(self, now: float) -> bool:
        return self.succeeded and self.stage_index(now) == len(STAGES)

    def to_json(self, now: float, *, output_urls: list[str], output_shape: str) -> dict[str, Any]:
        """The run object of docs/RUNFLOW-API.md as of `now`; `output_urls` are freshly signed URLs once done."""
        index = self.stage_index(now)
        terminal = index == len(STAGES)
        status = self.status_at(now)
        started_share = STAGES[2][0]
        logs = [
            {"timestamp": iso(self.created_at_unix + share * self.latency), "level": "info", "message": text}
            for share, _, text in STAGES[: index + 1]
        ]
        failure = self.failure if terminal else None
        if terminal:
            text = failure.message if failure else f"Run {status}."
            logs.append(
                {
                    "timestamp": iso(self.created_at_unix + self.latency),
                    "level": "error" if failure else "info",
                    "message": text,
                }
            )
        cost = None
        if terminal:
            cost = dollars(PRICE_CENTS) if self.succeeded else "0"  # failed runs are not billed
        return {
            "id": self.id,
            "model": self.model,
            "status_code": status,
            "input": self.input,
            "output": output_object(output_shape, output_urls) if terminal and output_urls else None,
            "cost": cost,
            "duration_ms": round((1 - started_share) * self.latency * 1000) if terminal else None,
            "created_at": iso(self.created_at_unix),
            "started_at": iso(self.created_at_unix + started_share * self.latency) if index >= 2 else None,
            "completed_at": iso(self.created_at_unix + self.latency) if terminal else None,
            "failure_code": failure.code if failure else None,
            "failure_message": failure.message if failure else None,
            "failure_stage_code": failure.stage if failure else None,
            "error": {"code": failure.code, "message": failure.message} if failure else None,
            "logs": logs,
            "metadata": self.metadata,
            "client_ref": self.client_ref,
            "callback_url": self.callback_url,
        }


# The callback `event` for each terminal status (docs/RUNFLOW-API.md, "Callbacks").
CALLBACK_EVENTS = {
    "succeeded": "run.completed",
    "partial_succeeded": "run.partial_succeeded",
    "failed": "run.failed",
    "errored": "run.failed",
    "canceled": "run.cancelled",
    "cancelled": "run.cancelled",
}
CALLBACK_FIELDS = ("run_id", "status", "output", "duration_ms", "created_at", "completed_at", "metadata")


def callback_payload(run_json: dict[str, Any]) -> dict[str, Any]:
    """The body Runflow POSTs to a run's callback_url, cut from the finished run object."""
    fields = {**run_json, "run_id": run_json["id"], "status": run_json["status_code"]}
    return {"event": CALLBACK_EVENTS[run_json["status_code"]], **{name: fields[name] for name in CALLBACK_FIELDS}}


READABLE_KEYS = frozenset(
    {name for name in RunRecord.__dataclass_fields__ if name != "output_lock"}
    | {"status", "succeeded", "created_at", "completed_at", "completed_at_monotonic"}
)
