"""The one path one image takes, from a validated input to a stored result: mapped step by step, as
file:function, in docs/ARCHITECTURE.md ("The path of one image"), the only place it is written out.

The node, the CLI, the benchmarks and the tests all come through here, so "never pay twice" is decided
in one place: a cached result costs nothing; a run already paid for (in the journal) is collected, not
re-created; a new run is journaled *before* its create is sent, with the Idempotency-Key its retries reuse.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import images, originals
from .assets import MAX_UPLOAD_BYTES, StagedAsset, check_upload_size, stage_bytes
from .cache import CachedResult, ResultCache, cache_key, pack_entry, stored_facts
from .callbacks import CallbackSettings
from .claims import Claims
from .durations import DurationModel
from .errors import (
    APIError,
    Conflict,
    InputRejected,
    NotFound,
    RunFailed,
    RunflowCancelled,
    RunflowError,
    SignedUrlExpired,
)
from .fleet import Fleet
from .http import CancelCheck, Transport
from .journal import JournalEntry, RunJournal
from .ledger import Ledger
from .product_isolation import PRICE_PER_IMAGE, IsolationParams
from .recent import RecentResults
from .redact import url_for_display
from .results import ImageURL, IsolationResult
from .runs import PollPolicy, Run, create_run, get_run, wait_for_run
from .service_address import is_loopback_url
from .url_policy import external_url_refusal
from .wakeups import Wakeup, shared_wakeups

log = logging.getLogger("runflow_api")

Emit = Callable[..., None]
_DOWNLOAD_ATTEMPTS = 3
_ENCODE_EARLY_BYTES = 40 * 1024 * 1024
_REPLAY_WINDOW_S = 600.0  # signed input URLs live minutes; past this, stage again
_ENCODE_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 2)
_CONFLICT_GENERATIONS = 8  # 409s to step over before giving up; each costs one request and no money


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


def _as_url(image: Any) -> str | None:
    """The URL an input names: an ImageURL always, a str only when it starts like one (a script's other
    strings are paths, which the caller meant)."""
    if isinstance(image, ImageURL):
        return image.url
    if isinstance(image, str) and image.strip().lower().startswith(("https://", "http://")):
        return image.strip()
    return None


def input_url_refusal(url: str, *, base_url: str) -> str | None:
    """Why an input URL is not used, or None. https only (http only to this machine, for the emulator);
    with the real service, no address of this machine or its network: the URL is downloaded here first."""
    if any(char.isspace() or ord(char) < 32 for char in url):
        return "it contains spaces or control characters"
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in ("https", "http"):
        return "it is not an https URL (file paths and other text are never read here)"
    if is_loopback_url(base_url) and not is_loopback_url(url):  # said for inputs; the policy below agrees
        return "the local emulator has no internet access and reads only URLs on this machine (Runflow Stage Image)"
    return external_url_refusal(url, base_url=base_url)


def _url_pixels(engine: Engine, url: str, name: str) -> np.ndarray:
    """Download an input URL once, so its cache key is its pixels: a re-signed URL of the same image, or
    a copy on another host, then costs nothing, and a CDN URL whose query selects another version or
    crop (`?v=2`, `?w=400`) is never mistaken for the old one."""
    shown = url_for_display(url)
    reason = input_url_refusal(url, base_url=engine.transport.base_url)
    if reason is not None:
        raise InputRejected(f"{name}: {shown!r} is refused: {reason}. Give one https image URL per line.")
    try:
        data = engine.transport.download(url, max_bytes=MAX_UPLOAD_BYTES, what=f"Reading {name} from {shown}")
    except RunflowError as exc:
        raise InputRejected(
            f"{name}: the image at {shown!r} could not be read ({exc.message}). Check that the URL opens "
            "in a browser and has not expired. Nothing was paid."
        ) from exc
    return images.to_array(data, name=name)


def prepare_job(
    image: Any, params: IsolationParams, *, index: int, engine: Engine, metadata: dict[str, str] | None = None,
) -> Job:
    """Validate one input and compute its cache key. Nothing is paid here: bad input costs nothing. The
    only request is the download of a URL input (to key it by its pixels)."""
    name = image.label if isinstance(image, ImageURL) and image.label else f"image {index}"
    url = _as_url(image)
    # A file already in a form the service reads as we do is uploaded as it is (originals.py).
    array, encoded = (_url_pixels(engine, url, name), None) if url is not None else originals.read(image, name=name)
    resolved = params.resolved_for(array.shape[1], array.shape[0])
    if url is None and encoded is None and array.nbytes > _ENCODE_EARLY_BYTES:
        # Big enough that the upload might pass 50 MiB: find out now, before any item of the batch pays.
        encoded = images.encode_for_upload(array, lossless=resolved.lossless)
        check_upload_size(len(encoded.data), what=name)
    key = cache_key(pixel_digest=images.pixel_digest(array), model=engine.model_id, service_id=engine.service_id,
                    options=resolved.key_fields())
    # A URL input is sent as its URL (the service fetches it): its pixels are not kept in memory.
    return Job(index, resolved, key, array if url is None else None, url, encoded, metadata)


def stage_array(
    transport: Transport,
    array: np.ndarray,
    *,
    lossless: bool,
    encoded: images.EncodedImage | None = None,
    should_cancel: CancelCheck | None = None,
) -> StagedAsset:
    """Encode (JPEG q95 for opaque photos, PNG with alpha or on request) and upload.

    At most one encode per core runs at a time (process-wide): sixteen encodes started together all
    finish late, so every run of a batch was created late and all ended at once, piling their downloads
    into the batch's tail. One per core, the first runs start at once and the rest follow in step."""
    if encoded is None:
        with _ENCODE_SLOTS:
            encoded = images.encode_for_upload(array, lossless=lossless)
    return stage_bytes(
        transport, encoded.data, mime_type=encoded.mime_type, filename=encoded.filename, should_cancel=should_cancel
    )


def _stored_entry(engine: Engine, job: Job) -> tuple[CachedResult, bool] | None:
    """This input's stored entry and whether it came from the fleet: the local cache first, then the
    shared store (whose entry is copied to the local cache, so the next hit costs no network)."""
    assert engine.cache is not None
    found = engine.cache.get(job.cache_key)
    if found is not None:
        return found, False
    shared = engine.fleet.results.get(job.cache_key) if engine.fleet is not None else None
    if shared is None:
        return None
    entry, blob = shared
    engine.cache.put_blob(job.cache_key, blob)
    return entry, True


def lookup_cached(engine: Engine, job: Job) -> IsolationResult | None:
    """A stored result for this job (from memory, disk or the fleet), or None. A damaged entry is a miss."""
    if engine.cache is None:
        return None
    recent = engine.recent.get(job.cache_key) if engine.recent is not None else None
    from_fleet = False
    if recent is not None:
        decoded, hit = recent
    else:
        found = _stored_entry(engine, job)
        if found is None:
            return None
        hit, from_fleet = found
        try:
            decoded = [images.decode_image(data, max_pixels=engine.max_output_pixels) for data in hit.all_images]
        except Exception as exc:  # a stored file that no longer decodes is only a miss
            log.warning("Ignoring an unreadable cached result (%s); it will be fetched again.", exc)
            return None
        if engine.recent is not None:
            engine.recent.put(job.cache_key, decoded, hit)
    run_id, cost, output_url = stored_facts(job.cache_key, hit.meta)
    return IsolationResult(
        image=decoded[0],
        run_id=run_id,
        cost=cost,
        output_url=output_url,
        cached=True,
        aspect_ratio=job.params.aspect_ratio,
        resolution=job.params.resolution,
        cache_key=job.cache_key,
        index=job.index,
        image_bytes=hit.image_bytes,
        images=decoded,
        images_bytes=list(hit.all_images),
        shared_hit=from_fleet,
    )


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


def _finished_run(engine: Engine, job: Job, emit: Emit, should_cancel: CancelCheck) -> tuple[Run, bool]:
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
                run = wait_for_run(
                    engine.transport,
                    run.id,
                    created_at=created_at,
                    kind=job.params.resolution,
                    durations=engine.durations,
                    policy=engine.poll,
                    should_cancel=should_cancel,
                    on_status=lambda current: emit("status", run_id=current.id, status=current.status),
                    wakeup=wakeup,
                )
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


def _download(engine: Engine, run: Run, should_cancel: CancelCheck) -> tuple[list[bytes], list[str]]:
    """Fetch every output image at once (a result is cached whole, so any later `outputs` mode is served
    from the cache); an expired URL is re-signed by reading the run again."""
    for attempt in range(1, _DOWNLOAD_ATTEMPTS + 1):
        urls = run.output_urls()
        if not urls:
            raise run.failure()
        try:
            blobs = [
                engine.transport.download(
                    url,
                    max_bytes=engine.max_output_bytes,
                    what=f"Downloading image {number} of {len(urls)} of run {run.id}",
                    should_cancel=should_cancel,
                )
                for number, url in enumerate(urls, start=1)
            ]
            return blobs, urls
        except SignedUrlExpired:
            if attempt == _DOWNLOAD_ATTEMPTS:
                raise
            run = get_run(engine.transport, run.id, should_cancel=should_cancel)
    raise AssertionError("unreachable: the loop either returns or raises")


def run_job(engine: Engine, job: Job, *, emit: Emit, should_cancel: CancelCheck) -> IsolationResult:
    """Produce the result for one job that missed the cache, resuming a journaled run when there is one.

    The input's claim is held from before staging until the result is stored, so another process (or
    client) asking for the same input waits here and then takes the stored result: one run, one bill."""
    holders: list[str] = []

    def on_wait(who: str) -> None:
        holders.append(who)
        emit("waiting", detail=who)

    with engine.claims.hold(job.cache_key, should_cancel=should_cancel, on_wait=on_wait) as waited:
        # After waiting, the other holder's result is fresh even for a forced re-run: it started after us.
        stored = lookup_cached(engine, job) if waited else None
        if stored is not None:
            return replace(stored, waited_for=holders[-1] if holders else None)
        return _produce(engine, job, emit=emit, should_cancel=should_cancel)


def _produce(engine: Engine, job: Job, *, emit: Emit, should_cancel: CancelCheck) -> IsolationResult:
    started = time.monotonic()
    run, resumed = _finished_run(engine, job, emit, should_cancel)
    if not run.succeeded:
        engine.journal.complete(job.cache_key)  # failed runs are not billed: a retry may create anew
        if engine.fleet is not None:
            engine.fleet.money.release(job.cache_key)
        raise run.failure()
    cost = run.cost if run.cost is not None else PRICE_PER_IMAGE
    record = engine.ledger.record(
        run.id, cost, job.cache_key, service_id=engine.service_id, list_price=run.cost is None
    )
    if engine.fleet is not None:
        engine.fleet.money.commit(job.cache_key, run.id, cost, record)
    try:
        blobs, urls = _download(engine, run, should_cancel)
        decoded = [images.decode_image(data, max_pixels=engine.max_output_pixels) for data in blobs]
    except RunFailed:
        engine.journal.complete(job.cache_key)
        raise
    emit("downloaded", run_id=run.id)
    if engine.cache is not None:
        meta = {"run_id": run.id, "cost": str(cost), "output_url": urls[0], "aspect_ratio": job.params.aspect_ratio,
                "resolution": job.params.resolution, "prompt": job.params.prompt, "created_at": time.time()}
        blob = pack_entry(blobs, meta)
        engine.cache.put_blob(job.cache_key, blob)
        if engine.fleet is not None:  # shared before the claim is released: a waiting machine finds it
            engine.fleet.results.put(job.cache_key, blob)
        if engine.recent is not None:
            engine.recent.put(job.cache_key, decoded, CachedResult(blobs[0], meta, tuple(blobs[1:])))
    engine.journal.complete(job.cache_key)
    return IsolationResult(
        image=decoded[0],
        run_id=run.id,
        cost=cost,
        output_url=urls[0],
        cached=False,
        resumed=resumed,
        aspect_ratio=job.params.aspect_ratio,
        resolution=job.params.resolution,
        cache_key=job.cache_key,
        elapsed_s=time.monotonic() - started,
        index=job.index,
        image_bytes=blobs[0],
        images=decoded,
        images_bytes=blobs,
        output_urls=urls,
    )
