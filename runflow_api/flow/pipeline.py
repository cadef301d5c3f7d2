"""The one path one image takes, from a prepared Job to a stored result: mapped step by step, as
file:function, in docs/ARCHITECTURE.md ("The path of one image"), the only place it is written out.

The node, the CLI, the benchmarks and the tests all come through here, so "never pay twice" is decided
in one place: a cached result (memory, disk, the fleet) costs nothing; a missed one is produced under the
input's claim, so two processes never buy the same image, by `paid_runs.finished_run` (a run already paid
for is collected, a new one journaled before its create is sent), then downloaded and stored before the
claim is released. Inputs become Jobs in `preparation.py`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from ..errors import RunFailed, SignedUrlExpired
from ..money.cache import CachedResult, pack_entry, stored_facts
from ..pictures import qa, result_images
from ..pictures.result_types import IsolationResult
from ..product_isolation import PRICE_PER_IMAGE
from ..service.cancel import CancelCheck
from ..service.runs import Run, get_run
from .paid_runs import finished_run
from .shared_state import Emit, Engine, Job

log = logging.getLogger("runflow_api")

_DOWNLOAD_ATTEMPTS = 3


def _stored_entry(engine: Engine, job: Job) -> tuple[CachedResult, bytes | None] | None:
    """This input's stored entry, and when it came from the fleet its packed bytes (copied to the local
    cache once its images decode, so the next hit costs no network): the local cache first, then the
    shared store."""
    assert engine.cache is not None
    found = engine.cache.get(job.cache_key)
    if found is not None:
        return found, None
    return engine.fleet.results.get(job.cache_key) if engine.fleet is not None else None


def lookup_cached(engine: Engine, job: Job, *, lazy: bool = False) -> IsolationResult | None:
    """A stored result for this job (from memory, disk or the fleet), or None. A damaged entry is a miss.

    With `lazy`, the images of an entry in the local cache are opened, not decoded: a caller that only
    writes their bytes (the CLI) never pays the decode, and the QA flags come with the entry. Only an
    entry whose pixels Pillow reads exactly as `decode_image` does (8-bit RGB/RGBA PNG) is opened so; any
    other is decoded now. The local cache only ever holds images this machine decoded before storing them;
    a fleet entry is always decoded here (its checksum is a plain sha256 any writer can compute), and one
    that does not decode is a miss, never copied, served or written as an output."""
    if engine.cache is None:
        return None
    recent = engine.recent.get(job.cache_key) if engine.recent is not None else None
    fleet_blob = None
    if recent is not None:
        decoded, hit = recent
    else:
        found = _stored_entry(engine, job)
        if found is None:
            return None
        hit, fleet_blob = found
        try:
            opened = [result_images.open_image(data, max_pixels=engine.max_output_pixels,
                                               lazy=lazy and fleet_blob is None) for data in hit.all_images]
        except Exception as exc:  # a stored file that no longer decodes is only a miss
            _warn_undecodable(engine, job, exc, from_fleet=fleet_blob is not None)
            return None
        if fleet_blob is not None:
            engine.cache.put_blob(job.cache_key, fleet_blob)
        decoded = [image for image, _ in opened]
        if engine.recent is not None and not any(deferred for _, deferred in opened):
            engine.recent.put(job.cache_key, decoded, hit)  # shared between calls: only loaded images
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
        shared_hit=fleet_blob is not None,
        known_flags=qa.stored(hit.meta),
        input_size=job.input_size,
    )


def _warn_undecodable(engine: Engine, job: Job, exc: Exception, *, from_fleet: bool) -> None:
    """One warning for a stored result whose image does not decode (a fleet entry's once per key, though
    the same input is looked up again under its claim)."""
    if from_fleet and engine.fleet is not None:
        engine.fleet.store.warn_foreign(engine.fleet.results.key_of(job.cache_key),
                                        f"a stored result whose image does not decode ({exc}); it is made again")
    else:
        log.warning("Ignoring an unreadable cached result (%s); it will be fetched again.", exc)


def run_job(
    engine: Engine, job: Job, *, emit: Emit, should_cancel: CancelCheck, wait: bool = True, recheck: bool = False,
    reload: Callable[[], Job] | None = None,
) -> IsolationResult:
    """Produce the result for one job that missed the cache, resuming a journaled run when there is one.

    The input's claim is held from before staging until the result is stored, so another process (or
    client) asking for the same input waits here and then takes the stored result: one run, one bill.
    With `wait=False` an input held by another raises `ClaimHeld` instead of waiting. `recheck` looks in
    the cache again once the claim is ours even if nobody held it just now: another holder may have stored
    the result and let go between the caller's look-up and this claim. `reload` gives the job with its
    pixels when `job` was kept without them; it is called only when this caller is to produce the result."""
    holders: list[str] = []

    def on_wait(who: str) -> None:
        holders.append(who)
        emit("waiting", detail=who)

    with engine.claims.hold(job.cache_key, should_cancel=should_cancel, on_wait=on_wait, wait=wait) as waited:
        # After waiting, the other holder's result is fresh even for a forced re-run: it started after us.
        stored = lookup_cached(engine, job) if waited or recheck else None
        if stored is not None:
            return replace(stored, waited_for=holders[-1] if holders else None)
        return _produce(engine, reload() if reload is not None else job, emit=emit, should_cancel=should_cancel)


def _produce(engine: Engine, job: Job, *, emit: Emit, should_cancel: CancelCheck) -> IsolationResult:
    started = time.monotonic()
    run, resumed = finished_run(engine, job, emit, should_cancel)
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
        decoded = [result_images.decode_image(data, max_pixels=engine.max_output_pixels) for data in blobs]
    except RunFailed:
        engine.journal.complete(job.cache_key)
        raise
    emit("downloaded", run_id=run.id)
    flags = qa.image_flags(decoded[0]) or []  # judged once, kept with the result for every later hit
    if engine.cache is not None:
        meta = {"run_id": run.id, "cost": str(cost), "output_url": urls[0], "aspect_ratio": job.params.aspect_ratio,
                "resolution": job.params.resolution, "prompt": job.params.prompt, "created_at": time.time(),
                "qa": qa.to_store(flags)}
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
        known_flags=flags,
        input_size=job.input_size,
    )


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
