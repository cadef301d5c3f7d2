"""Many images at once: every distinct input is its own run, all in flight together (bounded).

Runflow processes runs in parallel, so a batch of 16 should take about as long as one image, not 16
times as long. Identical inputs share one run, even when they are in flight at the same moment. One
failure never loses the others: each item's outcome is its result or its own error.

One streaming core serves both shapes of caller: a list already in memory (the node) and a lazy,
possibly huge, sequence of files (the CLI), where only a window of items is loaded at a time. The
caller's cancel check is polled on the calling thread every 50 ms; workers see a private event, so a
Cancel returns within a quarter second even while a request is in flight, and runs already created stay
journaled for the next call.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Any

from .cancel import CANCEL_TICK_S, CancelCheck
from .engine import Engine, Job
from .errors import RunflowCancelled, RunflowError
from .pipeline import lookup_cached, run_job
from .result_types import IsolationResult, ProgressEvent

log = logging.getLogger("runflow_api")

ProgressCallback = Callable[[ProgressEvent], None]
Outcome = IsolationResult | RunflowError
Source = tuple[int, Callable[[], Job]]


class _Reporter:
    """Delivers progress events safely from worker threads and remembers which runs were created."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self.run_ids: list[str] = []

    def emit_for(self, index: int) -> Callable[..., None]:
        def emit(kind: str, **fields: Any) -> None:
            self.send(ProgressEvent(kind=kind, index=index, **fields))

        return emit

    def send(self, event: ProgressEvent) -> None:
        with self._lock:
            if event.kind in ("created", "resumed") and event.run_id and event.run_id not in self.run_ids:
                self.run_ids.append(event.run_id)
            if self._callback is None:
                return
            try:
                self._callback(event)
            except Exception:  # a broken progress display must never cost a paid result
                log.exception("on_progress callback failed")

    def settle(self, index: int, outcome: Outcome, *, shared: bool) -> None:
        if isinstance(outcome, IsolationResult):
            kind = "cached" if outcome.cached else "done"
            cost = None if shared or outcome.cached else outcome.cost  # a duplicate rode on another's run
            self.send(ProgressEvent(kind, index, run_id=outcome.run_id, cost=cost, detail=_provenance(outcome)))
        else:
            self.send(ProgressEvent("failed", index, run_id=outcome.run_id, detail=outcome.message))


def _provenance(result: IsolationResult) -> str | None:
    """Where a stored result came from, for the counts people read: "waited:machine" (another machine of
    the fleet produced it while this one waited), "shared" (the fleet's store had it) or None."""
    if result.waited_for:
        return f"waited:{result.waited_for}"
    return "shared" if result.shared_hit else None


class _Leaders:
    """The first item with a given cache key does the work; later ones wait for its outcome.

    A list keeps finished outcomes (it returns them all anyway). A stream forgets a key once its item
    is done, or a 10,000-photo catalogue would hold every result image in memory; a later duplicate in
    the stream then finds the result in the cache instead."""

    def __init__(self, *, retain: bool) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, Future[Outcome]] = {}
        self._retain = retain

    def release(self, key: str) -> None:
        if not self._retain:
            with self._lock:
                self._by_key.pop(key, None)

    def claim(self, key: str) -> tuple[bool, Future[Outcome]]:
        with self._lock:
            if key in self._by_key:
                return False, self._by_key[key]
            future: Future[Outcome] = Future()
            self._by_key[key] = future
            return True, future


def _identity(job: Job) -> Job:
    return job


def _unexpected(exc: BaseException, index: int) -> RunflowError:
    return RunflowError(
        f"image {index}: unexpected {type(exc).__name__}: {exc}. This is a bug in runflow_api; please report it."
    )


def _work(
    engine: Engine,
    index: int,
    prepare: Callable[[], Job],
    *,
    leaders: _Leaders,
    reporter: _Reporter,
    cancelled: threading.Event,
    force_rerun: bool,
) -> tuple[Outcome, bool]:
    """One item on a worker thread: (outcome, whether it shared another item's run)."""
    try:
        job = prepare()
    except RunflowError as exc:
        return exc, False
    is_leader, shared = leaders.claim(job.cache_key)
    if not is_leader:
        outcome = shared.result()
        return (replace(outcome, index=index) if isinstance(outcome, IsolationResult) else outcome), True
    result: Outcome
    try:
        hit = None if force_rerun else lookup_cached(engine, job)
        result = hit or run_job(engine, job, emit=reporter.emit_for(index), should_cancel=cancelled.is_set)
    except RunflowError as exc:
        result = exc
    except Exception as exc:  # noqa: BLE001 - one item's bug must not lose the others' results
        result = _unexpected(exc, index)
    shared.set_result(result)
    leaders.release(job.cache_key)
    return result, False


def stream_outcomes(
    engine: Engine,
    sources: Iterable[Source],
    *,
    concurrency: int,
    window: int,
    force_rerun: bool = False,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    retain: bool = False,
) -> Iterator[tuple[int, Outcome]]:
    """Yield (index, outcome) as items finish, keeping at most `window` items loaded or in flight."""
    reporter = _Reporter(on_progress)
    leaders = _Leaders(retain=retain)
    cancelled = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="runflow")
    pending = iter(sources)
    inflight: dict[Future[tuple[Outcome, bool]], int] = {}

    def refill() -> None:
        while len(inflight) < window:
            source = next(pending, None)
            if source is None:
                return
            index, prepare = source
            future = pool.submit(
                _work, engine, index, prepare, leaders=leaders, reporter=reporter, cancelled=cancelled,
                force_rerun=force_rerun,
            )
            inflight[future] = index

    try:
        refill()
        while inflight:
            done, _ = wait(inflight, timeout=CANCEL_TICK_S, return_when=FIRST_COMPLETED)
            for future in done:
                index = inflight.pop(future)
                outcome, shared = future.result()
                reporter.settle(index, outcome, shared=shared)
                yield index, outcome
            if inflight and should_cancel is not None and should_cancel():
                ids = list(reporter.run_ids)
                raise RunflowCancelled(
                    f"Cancelled. {len(ids)} run(s) already created keep running at Runflow"
                    + (f" ({', '.join(ids)})" if ids else "")
                    + ": run again with the same inputs to collect them without paying again.",
                    run_ids=ids,
                )
            refill()
    finally:
        if inflight:
            cancelled.set()
        pool.shutdown(wait=False, cancel_futures=True)


def run_batch(
    engine: Engine,
    jobs: Sequence[Job],
    *,
    concurrency: int,
    force_rerun: bool = False,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> list[Outcome]:
    """Prepared jobs, all submitted at once; outcomes in input order."""
    sources: list[Source] = [(job.index, functools.partial(_identity, job)) for job in jobs]
    outcomes = dict(
        stream_outcomes(
            engine,
            sources,
            concurrency=min(concurrency, len(jobs)),
            window=len(jobs),
            force_rerun=force_rerun,
            on_progress=on_progress,
            should_cancel=should_cancel,
            retain=True,
        )
    )
    return [outcomes[job.index] for job in jobs]
