"""Many images at once: every distinct input is its own run, all in flight together (bounded).

Runflow processes runs in parallel, so a batch of 16 should take about as long as one image, not 16
times as long. Identical inputs share one run, even when they are in flight at the same moment. One
failure never loses the others: each item's outcome is its result or its own error.

One streaming core serves both shapes of caller: a list already in memory (the node) and a lazy,
possibly huge, sequence of files (the CLI), where only a window of items is loaded at a time. The
caller's cancel check is polled on the calling thread every 50 ms; workers see a private event, so a
Cancel returns within a quarter second even while a request is in flight, and runs already created stay
journaled for the next call.

A fleet shares the work: an input that another process or machine has claimed gives its worker back at
once and is set aside; the workers take the next unclaimed inputs, and once every input has been started
the set-aside ones are tried again every `_RETRY_S` (in a fleet, those the store says are worth it, every
`_FLEET_SWEEP_S`) until their result is stored (taken at no cost) or their claim is free (the cache is
looked at again under it, so nothing is paid twice). Machines started on one catalogue therefore split it
instead of queueing behind each other. In a fleet a streamed file is keyed from the pixel digest the
machine that first read it left (`fleet.shared_inputs`), so machines do not each decode the whole
catalogue, and one being read elsewhere is set aside the same way. A duplicate within the batch does not
hold a worker either: its outcome is its first occurrence's, delivered when that one ends.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

from ..errors import RunflowCancelled, RunflowError
from ..money.claims import ClaimHeld
from ..pictures.result_types import IsolationResult, ProgressCallback, ProgressEvent
from ..service.cancel import CANCEL_TICK_S, CancelCheck
from .pipeline import lookup_cached, run_job
from .shared_state import Engine, Job

log = logging.getLogger("runflow_api")

Outcome = IsolationResult | RunflowError
Source = tuple[int, Callable[[], Job]]
# How often set-aside inputs are tried again, once every input has been started: each try is a cache
# look-up and a claim attempt (a lock and, in a fleet, two Redis round trips), never a reload of the photo.
_RETRY_S = 0.25
# In a fleet, how often the store is asked (one round trip for all of them) which set-aside inputs are
# worth a try: only those are tried, so four machines with 24 inputs set aside each no longer spend most
# of two cores on tries that find the input still held.
_FLEET_SWEEP_S = 0.1


@dataclass(frozen=True)
class _Aside:
    """An input another process or machine holds: its worker went on to other inputs. The job is kept
    without its pixels (a fleet member may set most of a big catalogue aside); its `reload` gives them
    back if this process ends up producing the result after all. No job yet (and no leader) when the file
    was set aside while another machine was still reading it: then it is prepared again on retry."""

    prepare: Callable[[], Job]
    job: Job | None
    leader: Future[Outcome] | None
    who: str


@dataclass(frozen=True)
class _Follow:
    """A duplicate of an earlier input of this batch: its outcome will be that input's."""

    leader: Future[Outcome]


_Step = tuple[Outcome, bool] | _Aside | _Follow


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
            self.send(ProgressEvent(kind, index, run_id=outcome.run_id, cost=cost, detail=_provenance(outcome),
                                    result=outcome))
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
    lazy_hits: bool = False,
    again: _Aside | None = None,
) -> _Step:
    """One item on a worker thread, never waiting for another holder: (outcome, whether it shared another
    item's run), or the item set aside, or the earlier item it duplicates. `again` retries a set-aside item."""
    retry = again is not None
    if again is None or again.job is None or again.leader is None:
        try:
            job = prepare()
        except ClaimHeld as held:  # another machine is reading this very file (fleet.shared_inputs)
            return _Aside(prepare, None, None, held.who)
        except RunflowError as exc:
            return exc, False
        is_leader, own = leaders.claim(job.cache_key)
        if not is_leader:
            return _Follow(own)
    else:
        job, own = again.job, again.leader
    result: Outcome
    try:
        # A forced re-run never takes a result stored before it; once the claim is ours, the cache is read
        # again (a holder may have stored and let go meanwhile), and for a forced re-run only if it was
        # set aside: then the other holder's result is as fresh as the one it asked for.
        hit = None if force_rerun else lookup_cached(engine, job, lazy=lazy_hits)
        result = hit or run_job(engine, job, emit=reporter.emit_for(index), should_cancel=cancelled.is_set,
                                wait=False, recheck=retry or not force_rerun, reload=_pixels(job, prepare))
    except ClaimHeld as held:
        kept = replace(job, array=None, encoded=None, reload=job.reload or prepare)
        return _Aside(prepare, kept, own, held.who)
    except RunflowError as exc:
        result = exc
    except Exception as exc:  # noqa: BLE001 - one item's bug must not lose the others' results
        result = _unexpected(exc, index)
    if again is not None and isinstance(result, IsolationResult) and result.cached and not result.waited_for:
        result = replace(result, waited_for=again.who)
    if isinstance(result, IsolationResult):
        # QA flags are judged here, beside the download, not on the caller's thread: that thread starts
        # the next photos, and scipy's first import alone (0.4 s) held a whole batch's next runs back.
        _ = result.flags
    own.set_result(result)
    leaders.release(job.cache_key)
    return result, False


def _pixels(job: Job, prepare: Callable[[], Job]) -> Callable[[], Job] | None:
    """How to get `job` with its pixels when it has none (kept without them, or keyed from the fleet's
    memory of the file): its own `reload`, else preparing it again; None when it has them (or is a URL)."""
    if job.array is not None or job.source_url is not None:
        return None
    return job.reload or prepare


def _worth_retrying(engine: Engine, aside: dict[int, _Aside]) -> list[int]:
    """The set-aside items to try now: all of them, or in a fleet those whose result is stored or whose
    claim is gone (and any still waiting for another machine to finish reading its file, which costs a
    hash to try)."""
    keyed = {index: step.job.cache_key for index, step in aside.items() if step.job is not None}
    ready = engine.fleet.worth_retrying(sorted(set(keyed.values()))) if engine.fleet is not None else None
    if ready is None:
        return list(aside)
    return [index for index in aside if index not in keyed or keyed[index] in ready]


def _following(index: int, leader: Future[Outcome]) -> Future[_Step]:
    """A duplicate's own future, completed with its leader's outcome when that arrives: no worker waits."""
    follower: Future[_Step] = Future()

    def copy(done: Future[Outcome]) -> None:
        outcome = done.result()
        follower.set_result((replace(outcome, index=index) if isinstance(outcome, IsolationResult) else outcome, True))

    leader.add_done_callback(copy)
    return follower


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
    lazy_hits: bool = False,
) -> Iterator[tuple[int, Outcome]]:
    """Yield (index, outcome) as items finish, keeping at most `window` items loaded or in flight. With
    `lazy_hits`, a stored result's images are decoded only when the caller first reads their pixels
    (`pipeline.lookup_cached`)."""
    reporter = _Reporter(on_progress)
    leaders = _Leaders(retain=retain)
    cancelled = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="runflow")
    pending = iter(sources)
    inflight: dict[Future[_Step], tuple[int, bool]] = {}  # -> (index, whether it is a set-aside item's retry)
    aside: dict[int, _Aside] = {}
    following = 0  # duplicates in `inflight`: they hold no worker nor pixels, so the window leaves them out
    started_all = False
    next_sweep = 0.0

    def submit(index: int, prepare: Callable[[], Job], again: _Aside | None) -> None:
        future = pool.submit(
            _work, engine, index, prepare, leaders=leaders, reporter=reporter, cancelled=cancelled,
            force_rerun=force_rerun, lazy_hits=lazy_hits, again=again,
        )
        inflight[future] = (index, again is not None)

    def refill() -> None:
        nonlocal started_all, next_sweep
        while not started_all and len(inflight) - following < window:
            source = next(pending, None)
            if source is None:
                started_all = True
            else:
                submit(*source, None)
        if started_all and aside and time.monotonic() >= next_sweep:
            next_sweep = time.monotonic() + (_RETRY_S if engine.fleet is None else _FLEET_SWEEP_S)
            for index in _worth_retrying(engine, aside):
                submit(index, aside[index].prepare, aside.pop(index))

    try:
        refill()
        while inflight or aside:
            if inflight:
                done, _ = wait(inflight, timeout=CANCEL_TICK_S, return_when=FIRST_COMPLETED)
            else:
                done = set()
                time.sleep(CANCEL_TICK_S)
            for future in done:
                index, retried = inflight.pop(future)
                step = future.result()
                if isinstance(step, tuple) and step[1]:  # only a duplicate's outcome is "shared"
                    following -= 1
                if isinstance(step, _Aside):
                    if not retried:
                        reporter.send(ProgressEvent("waiting", index, detail=step.who))
                    aside[index] = step
                elif isinstance(step, _Follow):
                    inflight[_following(index, step.leader)] = (index, False)
                    following += 1
                else:
                    outcome, shared = step
                    reporter.settle(index, outcome, shared=shared)
                    yield index, outcome
            if (inflight or aside) and should_cancel is not None and should_cancel():
                ids = list(reporter.run_ids)
                raise RunflowCancelled(
                    f"Cancelled. {len(ids)} run(s) already created keep running at Runflow"
                    + (f" ({', '.join(ids)})" if ids else "")
                    + ": run again with the same inputs to collect them without paying again.",
                    run_ids=ids,
                )
            refill()
    finally:
        if inflight or aside:
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
