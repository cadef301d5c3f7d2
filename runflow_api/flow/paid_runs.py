"""Buying a run without ever paying twice: journaled before it is created, collected when already paid.

A new run's create body and Idempotency-Key are written to the journal *before* the create is sent, and
an earlier create whose answer was lost is replayed byte for byte; a run the journal knows is read back,
not bought again. The team budget is reserved before a create and given back when the service refuses it.
While callbacks are on, the wait is woken by the run's callback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import APIError, Conflict, NotFound, RunflowCancelled
from ..money.journal import JournalEntry
from ..service.cancel import CancelCheck
from ..service.runs import Run, create_run, get_run, wait_for_run
from ..service.wakeups import Wakeup, shared_wakeups
from .shared_state import Emit, Engine, Job
from .staging import stage_array

log = logging.getLogger("runflow_api")

_REPLAY_WINDOW_S = 600.0  # signed input URLs live minutes; past this, stage again
_CONFLICT_GENERATIONS = 8  # 409s to step over before giving up; each costs one request and no money


def _intent(engine: Engine, job: Job, emit: Emit, should_cancel: CancelCheck, earlier: JournalEntry | None
            ) -> JournalEntry:
    """The journaled create to send: an earlier one whose answer was lost, replayed byte for byte with its
    Idempotency-Key (a changed body would be a 409, or a second bill where keys are not honoured), or a
    new one for a freshly staged input. A stale earlier intent (its signed URL may have expired) is dropped."""
    if earlier is not None and earlier.params.get("input") and time.time() - earlier.created_at < _REPLAY_WINDOW_S:
        return earlier
    if earlier is not None:
        engine.journal.complete(job.cache_key)
    if job.source_url is not None:
        image_url = job.source_url
    else:
        assert job.array is not None
        staged = stage_array(
            engine.transport, job.array, lossless=job.params.lossless, encoded=job.encoded, should_cancel=should_cancel
        )
        emit("staged")
        image_url = staged.url
    # Everything the create body holds is journaled and replayed from here, never recomputed: a replay
    # with other metadata or another callback URL would be a different body (409, or a second bill).
    params: dict[str, Any] = {"input": job.params.run_input(image_url), "metadata": job.metadata or {},
                              "callback_url": engine.callbacks.callback_url if engine.callbacks else None}
    return engine.journal.record_intent(job.cache_key, service_id=engine.service_id, params=params)


def _send_create(engine: Engine, entry: JournalEntry, should_cancel: CancelCheck) -> Run:
    """The journaled body as it was: an entry from before metadata existed replays the legacy body."""
    return create_run(
        engine.transport,
        engine.model_id,
        entry.params["input"],
        idempotency_key=entry.idempotency_key,
        metadata=entry.params.get("metadata"),
        callback_url=entry.params.get("callback_url"),
        should_cancel=should_cancel,
    )


def _is_key_reuse(exc: Conflict) -> bool:
    """The contract names no code for "same key, other body"; the emulator answers IDEMPOTENCY_KEY_REUSED.
    Any other 409 is not ours to step over."""
    return "IDEMPOTEN" in (exc.code or "").upper()


def _release_if_refused(engine: Engine, job: Job, exc: APIError) -> None:
    """A create the service refused outright (4xx) started no run and bills nothing: give the team budget
    back. After a network error or a 5xx the outcome is unknown, so the reservation stays until the
    journaled create is replayed and collected."""
    if engine.fleet is not None and exc.status_code is not None and 400 <= exc.status_code < 500:
        engine.fleet.money.release(job.cache_key)


def _create(engine: Engine, job: Job, entry: JournalEntry, emit: Emit, should_cancel: CancelCheck) -> Run:
    """Send the journaled create: the journal entry exists before money can move."""
    if should_cancel():
        raise RunflowCancelled("Cancelled before the run was created.")
    if engine.fleet is not None:
        engine.fleet.money.reserve(job.cache_key, should_cancel)  # the team budget refuses here, before any create
    for attempt in range(1, _CONFLICT_GENERATIONS + 1):
        try:
            run = _send_create(engine, entry, should_cancel)
            break
        except Conflict as exc:
            # This generation's key was used with another body, before this journal forgot the
            # generation (closed entries are pruned after a day). Nothing was billed for this attempt:
            # move on to the next generation, with the same staged input. Any other 409 is final.
            if not _is_key_reuse(exc) or attempt == _CONFLICT_GENERATIONS:
                _release_if_refused(engine, job, exc)
                raise
            log.info("Idempotency-Key %s was used before; moving to the next one.", entry.idempotency_key)
            engine.journal.complete(job.cache_key)
            entry = engine.journal.record_intent(job.cache_key, service_id=engine.service_id, params=entry.params)
        except APIError as exc:
            _release_if_refused(engine, job, exc)
            raise
    engine.journal.record_run(job.cache_key, run.id)
    emit("created", run_id=run.id, status=run.status)
    return run


def _resume(engine: Engine, job: Job, entry: JournalEntry, emit: Emit, should_cancel: CancelCheck
            ) -> tuple[Run, float] | None:
    """Read back a journaled run (it was paid for); None when the service no longer knows it."""
    assert entry.run_id is not None
    emit("resumed", run_id=entry.run_id)
    try:
        run = get_run(engine.transport, entry.run_id, should_cancel=should_cancel)
    except NotFound:
        log.warning("Journaled run %s is unknown to the service; starting a new run.", entry.run_id)
        engine.journal.complete(job.cache_key)
        return None
    return run, time.monotonic() - max(0.0, time.time() - entry.updated_at)


def finished_run(engine: Engine, job: Job, emit: Emit, should_cancel: CancelCheck) -> tuple[Run, bool]:
    """The job's run, started or resumed and waited for: (terminal run, resumed?). Staging happens
    before a run slot is taken, so uploads overlap other runs' waiting."""
    entry = engine.journal.find(job.cache_key)
    resumable = entry if entry is not None and entry.run_id else None
    intent = None if resumable else _intent(engine, job, emit, should_cancel, entry)
    with engine.slots.hold(should_cancel):
        resumed = _resume(engine, job, resumable, emit, should_cancel) if resumable else None
        if resumed is None:
            intent = intent or _intent(engine, job, emit, should_cancel, None)
            run, created_at = _create(engine, job, intent, emit, should_cancel), time.monotonic()
        else:
            run, created_at = resumed
        if not run.terminal:
            sent = intent if resumed is None else resumable
            with _wakeup_for(engine, run.id, sent) as wakeup:
                kind = job.params.resolution
                waited = wait_for_run(
                    engine.transport,
                    run.id,
                    created_at=created_at,
                    expected=lambda: engine.durations.expected(kind),
                    policy=engine.poll,
                    should_cancel=should_cancel,
                    on_status=lambda current: emit("status", run_id=current.id, status=current.status),
                    wakeup=wakeup,
                )
            run = waited.run
            if run.succeeded:
                engine.durations.observe(kind, waited.ended_after, waited.ended_by)
    return run, resumed is not None


@contextmanager
def _wakeup_for(engine: Engine, run_id: str, sent: JournalEntry | None) -> Iterator[Wakeup | None]:
    """The callback alarm of a run while callbacks are on and its create asked for one; None (plain,
    learned polling) otherwise: a run resumed from a create sent without a callback_url never calls back,
    nor does one whose callback goes elsewhere (another machine of a fleet, whose journaled run this one
    collects), and waiting for it would only add the long fallback interval."""
    if engine.callbacks is None or sent is None or sent.params.get("callback_url") != engine.callbacks.callback_url:
        yield None
        return
    with shared_wakeups().register(run_id) as wakeup:
        yield wakeup
