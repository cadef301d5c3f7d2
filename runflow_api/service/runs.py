"""Creating a run, reading it back, and waiting for it to end.

Runflow has no push channel a desktop app can receive, so completion is noticed by polling. Polling
every 2 s (what the SDK does) wastes up to 2 s per image; polling every 100 ms hammers the API.
`wait_for_run` polls sparsely until a run is due, densely around the moment it is expected to finish (the
caller's estimate, from `durations.DurationModel`), then backs off again if it runs late, and says how long
the run took. This module only talks to the service: the flow (`paid_runs`) teaches the durations model,
and judges nothing about money beyond reading a believable cost.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from ..errors import InputRejected, RunFailed, RunflowTimeout, ServiceUnavailable
from ..product_isolation import MAX_COST_PER_RUN, plausible_cost
from ..settings.redact import redact
from .cancel import CancelCheck, cancellable_sleep
from .http import Transport
from .wakeups import Wakeup

log = logging.getLogger("runflow_api")

LEGACY_METADATA = {"source": "runflow-comfyui"}
SUCCESS_STATUSES = frozenset({"succeeded", "partial_succeeded"})
TERMINAL_STATUSES = SUCCESS_STATUSES | {"failed", "canceled", "cancelled", "errored"}


def model_path(model_id: str) -> str:
    """`owner/slug` -> `/v1/models/owner/slug`, each segment encoded; refuses path tricks."""
    segments = model_id.split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        raise InputRejected(f"Model id {model_id!r} is malformed: it must be segments like 'owner/name'.")
    return "/v1/models/" + "/".join(quote(seg, safe="") for seg in segments)


def run_path(run_id: str) -> str:
    if not run_id or "/" in run_id or run_id in (".", ".."):
        raise InputRejected(f"Run id {run_id!r} is malformed.")
    return f"/v1/runs/{quote(run_id, safe='')}"


# What a run id may look like: it goes into URL paths and the journal, so nothing that could be read as
# a path separator, a dot segment, whitespace or a control character, and a bounded length.
_RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._:-]{0,127}")
_warned_costs: set[str] = set()
_warned_lock = threading.Lock()


def _cost(value: Any, *, run_id: str) -> Decimal | None:
    """The run's cost when it is a believable amount (see product_isolation.MAX_COST_PER_RUN); otherwise None, so the
    caller records the list price, and one warning per run naming the value. An absent cost is silent."""
    cost = plausible_cost(value)
    if cost is None and value is not None:
        with _warned_lock:
            first = run_id not in _warned_costs
            _warned_costs.add(run_id)
        if first:
            log.warning(
                "Run %s: Runflow reported an implausible cost %.60s (expected an amount from 0 to %s dollars); "
                "the ledger records the list price instead. Check the run's charge in your Runflow account.",
                run_id, redact(repr(value)), MAX_COST_PER_RUN,
            )
    return cost


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _shown(text: str | None) -> str | None:
    """Service text as it may be shown: key-shaped tokens, Authorization values and URL userinfo hidden."""
    return redact(text) if text else text


def _timestamp(value: Any) -> float | None:
    """ISO-8601 (with +00:00 or Z) to Unix seconds; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def extract_output_urls(output: Any) -> list[str]:
    """Image URLs from any output shape Runflow's sources show, in the contract's order of preference."""
    if not isinstance(output, dict):
        return [output] if isinstance(output, str) and output else []
    outputs = output.get("outputs")
    if isinstance(outputs, list):
        urls = [item["url"] for item in outputs if isinstance(item, dict) and _text(item.get("url"))]
        if urls:
            return urls
    image_urls = output.get("image_urls")
    if isinstance(image_urls, list):
        urls = [url for url in image_urls if _text(url)]
        if urls:
            return urls
    image = output.get("image")
    if isinstance(image, str) and image:
        return [image]
    if isinstance(image, list):
        urls = [url for url in image if _text(url)]
        if urls:
            return urls
    if isinstance(image, dict) and _text(image.get("url")):
        return [image["url"]]
    for key in ("url", "output_url"):
        if _text(output.get(key)):
            return [output[key]]
    return []


@dataclass(frozen=True)
class Run:
    """The fields of a run object the client relies on, read tolerantly; `raw` keeps the rest."""

    id: str
    status: str
    output: Any = None
    cost: Decimal | None = None
    duration_ms: int | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    failure_stage: str | None = None
    created_at: float | None = None
    completed_at: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, body: Any, *, what: str) -> Run:
        if not isinstance(body, dict) or not _text(body.get("id")):
            raise ServiceUnavailable(f"{what}: Runflow's answer has no run id.", status_code=200)
        status = str(body.get("status_code") or body.get("status") or "queued").strip().lower()
        error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
        return cls(
            id=body["id"],
            status=status,
            output=body.get("output"),
            cost=_cost(body.get("cost"), run_id=body["id"]),
            duration_ms=body.get("duration_ms") if isinstance(body.get("duration_ms"), int) else None,
            failure_code=_shown(_text(body.get("failure_code")) or _text(error.get("code"))),
            failure_message=_shown(_text(body.get("failure_message")) or _text(error.get("message"))),
            failure_stage=_shown(_text(body.get("failure_stage_code")) or _text(body.get("failure_stage"))),
            created_at=_timestamp(body.get("created_at")),
            completed_at=_timestamp(body.get("completed_at")),
            raw=body,
        )

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCESS_STATUSES

    @property
    def service_duration(self) -> float | None:
        """Create-to-end on the service's own clock: exact even when our polls were far apart."""
        if self.created_at is None or self.completed_at is None or self.completed_at < self.created_at:
            return None
        return self.completed_at - self.created_at

    def output_urls(self) -> list[str]:
        return extract_output_urls(self.output)

    def failure(self) -> RunFailed:
        """The error for a run that ended without a usable result, with every failure field present."""
        if self.succeeded:
            return RunFailed(
                f"Run {self.id} succeeded but returned no image URL (output: {redact(str(self.output))[:200]}). "
                "It was probably billed: report the run id to Runflow support.",
                run_id=self.id,
                status=self.status,
            )
        reason = ": ".join(part for part in (self.failure_code, self.failure_message) if part)
        stage = f" at stage {self.failure_stage}" if self.failure_stage else ""
        advice = {
            "failed": "Failed runs are not billed. Check that the photo shows the product clearly, or name it "
            "in the prompt, then run again.",
            "canceled": "The run was cancelled at Runflow and not billed; run again.",
            "cancelled": "The run was cancelled at Runflow and not billed; run again.",
            "errored": "Runflow had an internal error; the run is not billed. Try again in a few minutes.",
        }[self.status]
        return RunFailed(
            f"Run {self.id} ended {self.status}{stage}{': ' + reason if reason else ''}. {advice}",
            run_id=self.id,
            status=self.status,
            failure_code=self.failure_code,
            failure_message=self.failure_message,
            failure_stage=self.failure_stage,
        )


def create_run(
    transport: Transport,
    model_id: str,
    run_input: dict[str, Any],
    *,
    idempotency_key: str,
    metadata: dict[str, str] | None = None,
    callback_url: str | None = None,
    should_cancel: CancelCheck | None = None,
) -> Run:
    """Start a paid run. Always carries the Idempotency-Key, so a retry after a lost answer is replayed.

    Without `metadata` the body carries LEGACY_METADATA, what every create sent before metadata was
    configurable: a journaled create from that time is then replayed byte for byte."""
    body = {"input": run_input, "callback_url": callback_url,
            "metadata": metadata if metadata is not None else LEGACY_METADATA}
    answer = transport.api(
        "POST",
        f"{model_path(model_id)}/runs",
        json=body,
        what="Starting the run",
        idempotency_key=idempotency_key,
        should_cancel=should_cancel,
    )
    _check_created_run_id(answer, idempotency_key)
    return Run.from_json(answer, what="Starting the run")


def _check_created_run_id(answer: Any, idempotency_key: str) -> None:
    """Refuse a create answer whose run id is missing or unsafe before anyone journals or polls it: such an
    id would leave the input stuck ("malformed" on every later call) while the run may have been billed.
    The Idempotency-Key is what Runflow support can find the run by, and what a retry replays."""
    run_id = answer.get("id") if isinstance(answer, dict) else None
    if isinstance(run_id, str) and _RUN_ID.fullmatch(run_id):
        return
    shown = f"a malformed run id {run_id[:80]!r}" if isinstance(run_id, str) else "no usable run id"
    raise ServiceUnavailable(
        f"Starting the run: Runflow answered with {shown}, so the run cannot be followed. It may have been "
        f"billed: quote the Idempotency-Key {idempotency_key} to Runflow support to find it or get a refund. "
        "Running the same input again within a few minutes replays this create and is not billed again.",
        status_code=200,
        code="MALFORMED_RUN_ID",
    )


def get_run(transport: Transport, run_id: str, *, should_cancel: CancelCheck | None = None) -> Run:
    answer = transport.api("GET", run_path(run_id), what=f"Reading run {run_id}", should_cancel=should_cancel)
    return Run.from_json(answer, what=f"Reading run {run_id}")


@dataclass(frozen=True)
class PollPolicy:
    """How to wait: overall limit (generous: runs wait in `queued` when the fleet is busy) and cadence."""

    overall_timeout: float = 900.0
    first_poll: float = 0.5
    idle_interval: float = 2.0
    dense_interval: float = 0.1
    dense_lead: float = 0.3
    backoff: float = 1.5
    callback_interval: float = 15.0  # with callbacks on: the fallback poll, the most a lost callback costs

    def next_delay(self, elapsed: float, expected: float | None, last_delay: float) -> float:
        """Seconds until the next poll, given time since the run was created."""
        if expected is None:  # nothing learned yet: grow from first_poll to idle_interval
            return min(self.idle_interval, max(self.first_poll, last_delay * self.backoff))
        # Short runs get a proportionally shorter lead and cadence, so a 0.5 s run is not detected 0.1 s late.
        dense = min(self.dense_interval, max(0.02, expected / 10))
        dense_from = expected - min(max(self.dense_lead, 0.03 * expected), 0.3 * expected)
        if elapsed < dense_from:
            return min(self.idle_interval, dense_from - elapsed)
        if elapsed < expected + max(1.0, 0.2 * expected):
            return dense
        return min(self.idle_interval, max(dense, last_delay * self.backoff))


StatusCallback = Callable[[Run], None]


@dataclass(frozen=True)
class WaitedRun:
    """A terminal run and how long it took, in seconds from its create: it ended after `ended_after` (it
    was last seen pending then, or the service's own duration) and by `ended_by` (when it was seen ended)."""

    run: Run
    ended_after: float
    ended_by: float


def wait_for_run(
    transport: Transport,
    run_id: str,
    *,
    created_at: float,
    expected: Callable[[], float | None],
    policy: PollPolicy,
    should_cancel: CancelCheck | None = None,
    on_status: StatusCallback | None = None,
    wakeup: Wakeup | None = None,
) -> WaitedRun:
    """Poll until the run is terminal; returns it (successful or not) with how long it took.
    `created_at` is time.monotonic(); `expected()` is how long such a run is expected to take, if known.

    With a `wakeup` (callbacks are on), the run is read when its callback wakes the wait, and otherwise
    only every `policy.callback_interval`: the learned durations would only add polls the callback makes
    useless. The callback is never trusted for the result itself: the run is always read from the API."""
    deadline = created_at + policy.overall_timeout
    last_status: str | None = None
    last_pending_at = created_at
    delay = 0.0
    while True:
        elapsed = time.monotonic() - created_at
        if wakeup is not None:
            delay = min(policy.callback_interval, max(0.0, deadline - time.monotonic()))
        else:
            delay = policy.next_delay(elapsed, expected(), delay)
        if time.monotonic() + delay > deadline:
            raise RunflowTimeout(
                f"Run {run_id} was still {last_status or 'pending'} after {policy.overall_timeout:.0f} s. "
                "It may still finish at Runflow: run again with the same inputs to collect it without paying "
                "again, or raise the wait limit.",
                run_id=run_id,
            )
        if wakeup is not None:
            wakeup.wait(delay, should_cancel)  # returns early when the run's callback comes in
        else:
            cancellable_sleep(delay, should_cancel)
        polled_at = time.monotonic()
        run = get_run(transport, run_id, should_cancel=should_cancel)
        if run.status != last_status:
            last_status = run.status
            if on_status is not None:
                on_status(run)
        if run.terminal:
            exact = run.service_duration
            if exact is not None:
                return WaitedRun(run, exact, exact)
            return WaitedRun(run, max(0.0, last_pending_at - created_at), polled_at - created_at)
        last_pending_at = polled_at
