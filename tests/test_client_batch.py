"""Batches: parallel runs, order, per-item failures, idempotent creates under faults, expiry, cancel."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from support import peak_overlap, product_photo

from runflow_api import RetryPolicy, RunFailed, RunflowCancelled, SignedUrlExpired
from runflow_api.product_isolation import canvas_size


def test_batch_runs_in_parallel_and_keeps_order(emulator_factory, client_for):
    emu = emulator_factory(latency=0.6)
    client = client_for(emu, max_concurrency=8)
    photos = [product_photo(seed) for seed in range(8)]
    outcomes = client.isolate_many(photos, resolution="1K")
    in_flight = peak_overlap([emu.runs[o.run_id] for o in outcomes])
    assert in_flight >= 4, f"at most {in_flight} of 8 runs were in flight at once: they did not run in parallel"
    assert [o.index for o in outcomes] == list(range(8))
    assert len({o.run_id for o in outcomes}) == 8
    assert emu.stats["creates"] == 8


def test_results_map_to_their_inputs(emulator_factory, client_for):
    emu = emulator_factory(cheap=False)
    client = client_for(emu)
    red = np.zeros((60, 60, 3), np.uint8) + 230
    red[20:40, 20:40] = (220, 20, 20)
    blue = red.copy()
    blue[20:40, 20:40] = (20, 20, 220)
    outcomes = client.isolate_many([red, blue, red.copy()], resolution="1K")
    centres = [np.asarray(o.image)[512, 512, :3] for o in outcomes]
    assert centres[0][0] > 150 > centres[0][2]
    assert centres[1][2] > 150 > centres[1][0]
    assert emu.stats["creates"] == 2, "the two identical inputs share one run"


def test_one_failed_item_never_loses_the_others(emu, client_for):
    emu.faults.fail_rate = 0.5
    emu.faults.seed = 11
    outcomes = client_for(emu).isolate_many([product_photo(s) for s in range(8)], resolution="1K")
    failures = [o for o in outcomes if isinstance(o, RunFailed)]
    successes = [o for o in outcomes if not isinstance(o, Exception)]
    assert failures and successes and len(failures) + len(successes) == 8
    assert all(f.run_id for f in failures)


def test_create_retried_after_a_dropped_answer_makes_exactly_one_run(emu, client_for):
    emu.faults.routes = {"create"}
    emu.faults.drop_rate = 1.0
    emu.faults.drop_after = True
    client = client_for(emu, retry=RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.02, jitter=0.0))

    def heal() -> None:  # after two lost answers, let the next retry through
        while emu.stats["idempotent_replays"] + emu.stats["creates"] < 2:
            time.sleep(0.005)
        emu.faults.drop_rate = 0.0

    threading.Thread(target=heal, daemon=True).start()
    result = client.isolate(product_photo(), resolution="1K")
    assert result.run_id
    assert emu.stats["creates"] == 1
    assert emu.stats["idempotent_replays"] >= 1


def test_batch_of_40_under_faults_finishes_with_40_results_and_40_creates(emu, client_for):
    emu.faults.seed = 2026
    emu.faults.error_rate = 0.2
    emu.faults.error_status = 503
    emu.faults.drop_rate = 0.05
    emu.faults.drop_after = True
    emu.faults.rate_limit_burst = 6
    emu.faults.retry_after = None
    client = client_for(emu, max_concurrency=16,
                        retry=RetryPolicy(attempts=8, base_delay=0.01, max_delay=0.05, jitter=0.01))
    photos = [product_photo(seed) for seed in range(40)]
    outcomes = client.isolate_many(photos, resolution="1K")
    assert [type(o).__name__ for o in outcomes] == ["IsolationResult"] * 40
    assert all(o.image.size == (1024, 1024) for o in outcomes)
    assert len({o.run_id for o in outcomes}) == 40
    assert emu.stats["creates"] == 40


def test_expired_upload_url_starts_the_upload_again(emu, client_for):
    emu.faults.upload_url_ttl = 0.0
    with pytest.raises(SignedUrlExpired):
        client_for(emu).isolate(product_photo(), resolution="1K")
    assert emu.stats["asset_uploads"] == 3 and emu.stats["creates"] == 0

    emu.reset_stats()
    emu.faults.upload_url_ttl = 600

    expired_once = threading.Event()
    original = emu.faults.upload_url_ttl
    emu.faults.upload_url_ttl = 0.0

    def restore() -> None:
        while emu.stats["asset_uploads"] < 1:
            time.sleep(0.001)
        emu.faults.upload_url_ttl = original
        expired_once.set()

    threading.Thread(target=restore, daemon=True).start()
    result = client_for(emu).isolate(product_photo(1), resolution="1K")
    assert expired_once.is_set() and result.run_id
    assert emu.stats["creates"] == 1


def test_expired_output_url_is_re_signed_then_collected_later(emu, client_for):
    def expire_after_create() -> None:  # the input URL must stay valid; only the outputs expire
        while emu.stats["creates"] < 1:
            time.sleep(0.002)
        emu.faults.output_url_ttl = 0.0

    threading.Thread(target=expire_after_create, daemon=True).start()
    with pytest.raises(SignedUrlExpired):
        client_for(emu).isolate(product_photo(), resolution="1K")
    assert emu.stats["creates"] == 1
    assert emu.stats["polls"] >= 3, "each expired download is followed by a fresh read of the run"

    emu.faults.output_url_ttl = 600
    result = client_for(emu).isolate(product_photo(), resolution="1K")
    assert result.resumed, "the paid run is collected, not created again"
    assert emu.stats["creates"] == 1


def test_cancel_returns_within_a_quarter_second_and_creates_nothing_after(emulator_factory, client_for):
    emu = emulator_factory(latency=5.0)
    client = client_for(emu, max_concurrency=2)
    cancel = threading.Event()
    created_after_cancel: list[int] = []

    def on_progress(event):
        if event.kind == "created":
            if cancel.is_set():
                created_after_cancel.append(event.index)
            cancel.set()

    photos = [product_photo(seed) for seed in range(6)]
    cancelled_at: list[float] = []

    def should_cancel() -> bool:
        if cancel.is_set() and not cancelled_at:
            cancelled_at.append(time.monotonic())
        return cancel.is_set()

    with pytest.raises(RunflowCancelled) as caught:
        client.isolate_many(photos, resolution="1K", on_progress=on_progress, should_cancel=should_cancel)
    latency = time.monotonic() - cancelled_at[0]
    assert latency < 0.25, f"cancel took {latency:.3f} s"
    time.sleep(0.3)  # let in-flight workers notice the cancel
    assert emu.stats["creates"] <= 2, "no new creates after cancel (two were possibly in flight)"
    assert caught.value.run_ids and all(rid in str(caught.value) for rid in caught.value.run_ids)


def test_progress_events_tell_the_story(emu, client_for):
    events = []
    lock = threading.Lock()

    def record(event):
        with lock:
            events.append(event)

    client_for(emu).isolate_many([product_photo(1), product_photo(2)], resolution="1K", on_progress=record)
    kinds = {event.kind for event in events}
    assert {"staged", "created", "status", "downloaded", "done"} <= kinds
    for index in (0, 1):
        story = [e.kind for e in events if e.index == index]
        assert story.index("staged") < story.index("created") < story.index("downloaded") < story.index("done")


def test_balance_both_shapes(emu, client_for):
    client = client_for(emu)
    first = client.balance()
    emu.faults.balance_shape = "cents"
    second = client.balance()
    assert first.amount == second.amount and first.amount is not None


def test_canvas_sizes_for_all_pairs_match_the_contract():
    assert canvas_size("16:9", "2K") == (2048, 1152)
    assert canvas_size("9:16", "4K") == (2304, 4096)
    assert canvas_size("21:9", "1K") == (1024, 439)
