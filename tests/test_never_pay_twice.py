"""Never pay twice, never lose a paid result: cache, journal resume (after Cancel and after SIGKILL),
spend guard, balance pre-check and ledger, counted with the emulator's own statistics."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from support import EMULATOR_KEY, product_photo

from runflow_api import InsufficientCredit, RunflowCancelled, SpendLimitExceeded
from runflow_api.money.ledger import Ledger
from runflow_api.money.recent import RecentResults, shared_recent_results

REPO = Path(__file__).resolve().parents[1]


def test_same_image_twice_costs_one_run(emu, client_for):
    client = client_for(emu)
    first = client.isolate(product_photo(), aspect_ratio="3:4", resolution="1K")
    before = dict(emu.stats)
    second = client.isolate(product_photo(), aspect_ratio="3:4", resolution="1K")
    assert second.cached and not first.cached
    assert emu.stats["uploads"] == before["uploads"] and emu.stats["creates"] == before["creates"]
    assert emu.stats["requests"] == before["requests"], "a cache hit sends nothing"
    assert np.array_equal(np.asarray(first.image), np.asarray(second.image))
    assert second.run_id == first.run_id


def test_cache_survives_a_new_client_but_not_other_parameters_or_services(emulator_factory, client_for):
    emu = emulator_factory()
    client_for(emu).isolate(product_photo(), resolution="1K")
    assert client_for(emu).isolate(product_photo(), resolution="1K").cached
    assert not client_for(emu).isolate(product_photo(), resolution="2K").cached
    assert not client_for(emu).isolate(product_photo(), resolution="1K", prompt="the bag").cached
    other = emulator_factory()
    assert not client_for(other).isolate(product_photo(), resolution="1K").cached, "services never share results"


def test_force_rerun_pays_again(emu, client_for):
    client = client_for(emu)
    client.isolate(product_photo(), resolution="1K")
    result = client.isolate(product_photo(), resolution="1K", force_rerun=True)
    assert not result.cached and emu.stats["creates"] == 2


def test_batch_of_8_with_3_duplicates_makes_5_runs(emu, client_for):
    photos = [product_photo(s) for s in range(5)] + [product_photo(0), product_photo(1), product_photo(4)]
    outcomes = client_for(emu).isolate_many(photos, resolution="1K")
    assert len(outcomes) == 8 and emu.stats["creates"] == 5
    assert outcomes[5].run_id == outcomes[0].run_id and outcomes[7].run_id == outcomes[4].run_id


def test_cancel_after_3_creates_then_rerun_pays_for_8_not_11(emulator_factory, client_for):
    emu = emulator_factory(latency=1.0)
    photos = [product_photo(s) for s in range(8)]
    client = client_for(emu, max_concurrency=3)
    created = threading.Event()
    count = [0]
    lock = threading.Lock()

    def on_progress(event):
        if event.kind == "created":
            with lock:
                count[0] += 1
                if count[0] >= 3:
                    created.set()

    with pytest.raises(RunflowCancelled) as caught:
        client.isolate_many(photos, resolution="1K", on_progress=on_progress, should_cancel=created.is_set)
    time.sleep(0.2)
    assert emu.stats["creates"] == 3
    assert len(caught.value.run_ids) == 3

    outcomes = client_for(emu).isolate_many(photos, resolution="1K")
    assert all(not isinstance(o, Exception) for o in outcomes)
    assert sum(o.resumed for o in outcomes) == 3
    assert emu.stats["creates"] == 8


def test_killed_process_then_same_call_pays_for_4_not_8(emulator_factory, tmp_path):
    emu = emulator_factory(latency=3.0)
    inputs = tmp_path / "inputs.npy"
    np.save(inputs, np.stack([product_photo(s) for s in range(4)]))
    script = textwrap.dedent(
        f"""
        import sys, json, numpy as np
        sys.path.insert(0, {str(REPO)!r})
        from runflow_api import RunflowClient, PollPolicy
        photos = list(np.load({str(inputs)!r}))
        client = RunflowClient({EMULATOR_KEY!r}, {emu.base_url!r}, cache_dir={str(tmp_path / 'cache')!r},
                               data_dir={str(tmp_path / 'data')!r},
                               poll=PollPolicy(first_poll=0.05, idle_interval=0.1, dense_interval=0.05))
        outcomes = client.isolate_many(photos, resolution="1K")
        print(json.dumps([o.run_id for o in outcomes]))
        """
    )
    victim = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while emu.stats["creates"] < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emu.stats["creates"] == 4
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL

    survivor = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert survivor.returncode == 0, survivor.stderr
    run_ids = json.loads(survivor.stdout.strip().splitlines()[-1])
    assert len(set(run_ids)) == 4
    assert set(run_ids) == set(emu.runs)
    assert emu.stats["creates"] == 4


def test_spend_limit_below_batch_cost_creates_nothing(emu, client_for):
    client = client_for(emu, spend_limit="1.00")
    with pytest.raises(SpendLimitExceeded) as caught:
        client.isolate_many([product_photo(s) for s in range(5)], resolution="1K")
    text = str(caught.value)
    assert "5 paid run(s)" in text and "$1.35" in text and "$1.00" in text and "Raise the limit" in text
    assert emu.stats["requests"] == 0


def test_spend_limit_counts_only_new_runs(emu, client_for):
    client = client_for(emu)
    client.isolate_many([product_photo(s) for s in range(3)], resolution="1K")
    photos = [product_photo(s) for s in range(5)] + [product_photo(0)]
    plan = client.plan(photos, resolution="1K")
    assert (plan.total, plan.unique, plan.cached, plan.to_create) == (6, 5, 3, 2)
    assert plan.estimated_cost == Decimal("0.54")
    outcomes = client.isolate_many(photos, resolution="1K", spend_limit="0.54")
    assert all(not isinstance(o, Exception) for o in outcomes) and emu.stats["creates"] == 5


def test_balance_too_low_for_a_large_batch_creates_nothing(emulator_factory, client_for):
    emu = emulator_factory(balance="2.00")
    client = client_for(emu, balance_check_min_runs=10)
    with pytest.raises(InsufficientCredit) as caught:
        client.isolate_many([product_photo(s) for s in range(10)], resolution="1K")
    assert "$2.00" in str(caught.value) and "$2.70" in str(caught.value)
    assert emu.stats["creates"] == 0 and emu.stats["uploads"] == 0


def test_failed_balance_check_warns_and_goes_on(emu, client_for, caplog):
    emu.faults.routes = {"balance"}
    emu.faults.error_rate = 1.0
    emu.faults.error_status = 500
    outcomes = client_for(emu, balance_check_min_runs=2).isolate_many(
        [product_photo(1), product_photo(2)], resolution="1K"
    )
    assert len(outcomes) == 2 and emu.stats["creates"] == 2
    assert "Could not check the balance" in caplog.text


def test_truncated_cache_entry_is_a_miss_not_a_crash(emu, client_for, tmp_path):
    client = client_for(emu)
    client.isolate(product_photo(), resolution="1K")
    entries = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert entries
    for path in entries:
        path.write_bytes(path.read_bytes()[:100])
    shared_recent_results().clear()  # as in a new process: only the damaged disk entry is left
    again = client_for(emu).isolate(product_photo(), resolution="1K")
    assert not again.cached and emu.stats["creates"] == 2


@pytest.mark.parametrize(
    "meta_patch",
    [{"cost": "abc"}, {"cost": "sNaN"}, {"cost": 1e9}, {"run_id": 12345}, {"output_url": ["x"]}],
    ids=["cost-abc", "cost-snan", "cost-huge", "run-id-number", "url-list"],
)
def test_malformed_cache_metadata_keeps_the_paid_image(emu, client_for, caplog, meta_patch):
    """A hand-edited or foreign metadata field loses only that fact: the checksummed image is served."""
    client = client_for(emu)
    first = client.isolate(product_photo(), resolution="1K")
    cache = client.cache
    stored = cache.get(first.cache_key)
    cache.put(first.cache_key, stored.image_bytes, {**stored.meta, **meta_patch})
    shared_recent_results().clear()
    for _ in range(2):
        again = client_for(emu).isolate(product_photo(), resolution="1K")
        assert again.cached and again.image.size == first.image.size
    assert emu.stats["creates"] == 1, "nothing paid again"
    assert caplog.text.count("malformed metadata") == 1
    field = next(iter(meta_patch))
    assert getattr(again, field) is None


def test_ledger_records_each_paid_run_once(emu, client_for, tmp_path):
    client = client_for(emu)
    client.isolate_many([product_photo(1), product_photo(2), product_photo(1)], resolution="1K")
    client.isolate(product_photo(1), resolution="1K")  # cached: not paid again
    totals = client.ledger.totals()
    assert totals.session_runs == 2 and totals.session_cost == Decimal("0.54")
    lines = (tmp_path / "data" / "ledger.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 2 and {r["run_id"] for r in records} == set(emu.runs)
    assert client_for(emu).ledger is client.ledger, "one ledger per file per process: one session"
    another_process = Ledger(tmp_path / "data" / "ledger.jsonl").totals()
    assert another_process.all_runs == 2 and another_process.session_runs == 0


def test_journal_is_emptied_once_results_are_cached(emu, client_for):
    client = client_for(emu)
    client.isolate_many([product_photo(1), product_photo(2)], resolution="1K")
    assert client.journal.pending() == []


def test_lost_create_answer_is_replayed_by_the_next_call_not_paid_again(emu, client_for):
    from runflow_api import NetworkError, RetryPolicy

    emu.faults.routes = {"create"}
    emu.faults.drop_rate = 1.0
    emu.faults.drop_after = True  # the run exists at Runflow, but its answer never arrives
    with pytest.raises(NetworkError):
        client_for(emu, retry=RetryPolicy(attempts=1)).isolate(product_photo(), resolution="1K")
    assert emu.stats["creates"] == 1

    emu.faults.drop_rate = 0.0
    result = client_for(emu).isolate(product_photo(), resolution="1K")
    assert emu.stats["creates"] == 1 and emu.stats["idempotent_replays"] == 1
    assert emu.stats["uploads"] == 1, "the journaled request is replayed as it was, not re-staged"
    assert result.run_id in emu.runs


def test_repeat_in_the_same_process_comes_from_memory_and_is_a_copy(emu, client_for, tmp_path):
    first = client_for(emu).isolate(product_photo(), resolution="1K")
    for path in (tmp_path / "cache").rglob("*.rfc"):
        path.unlink()  # only the memory tier can answer now
    requests_before = emu.stats["requests"]
    again = client_for(emu).isolate(product_photo(), resolution="1K")
    assert again.cached and emu.stats["requests"] == requests_before
    assert np.array_equal(np.asarray(again.image), np.asarray(first.image))
    again.image.paste((0, 0, 0, 0), (0, 0, 50, 50))
    third = client_for(emu).isolate(product_photo(), resolution="1K")
    assert np.array_equal(np.asarray(third.image), np.asarray(first.image)), "callers get copies"


def test_memory_tier_is_bounded_and_least_recently_used():
    from PIL import Image

    from runflow_api.money.cache import CachedResult

    tier = RecentResults(max_bytes=3 * 100 * 100 * 4)
    for n in range(3):
        tier.put(f"k{n}", Image.new("RGBA", (100, 100)), CachedResult(b"", {}))
    tier.get("k0")
    tier.put("k3", Image.new("RGBA", (100, 100)), CachedResult(b"", {}))
    assert tier.get("k0") is not None and tier.get("k1") is None, "the least recently used goes first"
    tier.put("huge", Image.new("RGBA", (1000, 1000)), CachedResult(b"", {}))
    assert tier.get("huge") is None, "an item larger than the whole tier is not kept"
