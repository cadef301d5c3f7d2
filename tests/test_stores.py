"""The three on-disk stores on their own: cache (atomicity, two processes, damage, LRU), journal and ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import pytest
from support import product_photo

from runflow_api.money.cache import ResultCache, cache_key
from runflow_api.money.journal import RunJournal
from runflow_api.money.ledger import Ledger
from runflow_api.product_isolation import IsolationParams

REPO = Path(__file__).resolve().parents[1]


def key(n: int) -> str:
    return cache_key(pixel_digest=f"p{n}", model="m", service_id="s", options=IsolationParams("1:1", "1K").key_fields())


def test_key_depends_on_every_ingredient():
    def keyed(pixel_digest: str = "p", model: str = "m", service_id: str = "s", **options: object) -> str:
        params = IsolationParams.of(IsolationParams("1:1", "1K"), **options)
        return cache_key(pixel_digest=pixel_digest, model=model, service_id=service_id, options=params.key_fields())

    variants = [{"pixel_digest": "q"}, {"model": "n"}, {"aspect_ratio": "4:3"}, {"resolution": "2K"},
                {"prompt": "shoe"}, {"service_id": "emulator"}, {"lossless": True}]
    keys = {keyed(**change) for change in variants} | {keyed()}
    assert len(keys) == len(variants) + 1


def test_put_get_roundtrip_and_contains(tmp_path):
    cache = ResultCache(tmp_path)
    assert cache.get(key(1)) is None and not cache.contains(key(1))
    cache.put(key(1), b"\x89PNG-bytes", {"run_id": "r1", "cost": "0.27"})
    hit = cache.get(key(1))
    assert hit is not None and hit.image_bytes == b"\x89PNG-bytes" and hit.meta["run_id"] == "r1"
    assert cache.contains(key(1))


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_damaged_entry_is_one_warned_miss(tmp_path, caplog, damage):
    cache = ResultCache(tmp_path)
    cache.put(key(1), b"x" * 1000, {"run_id": "r1"})
    path = next(tmp_path.rglob("*.rfc"))
    blob = path.read_bytes()
    path.write_bytes({"truncate": blob[:-10], "flip": blob[:-1] + b"?", "garbage": b"nonsense" * 10,
                      "empty": b""}[damage])
    assert cache.get(key(1)) is None
    assert cache.get(key(1)) is None
    assert sum("damaged" in r.message for r in caplog.records) == 1
    assert not path.exists(), "a damaged entry is removed so it can be fetched again"


def test_unwritable_cache_is_only_a_warning(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    cache = ResultCache(blocker)
    cache.put(key(1), b"data", {})
    assert cache.get(key(1)) is None
    assert "cannot write" in caplog.text


def test_least_recently_used_entries_are_evicted(tmp_path):
    cache = ResultCache(tmp_path, max_bytes=5000)
    past = time.time() - 100
    for n in range(4):
        cache.put(key(n), bytes(1000), {})
        os.utime(cache._path(key(n)), (past + n, past + n))  # written in the order 0, 1, 2, 3
    cache.get(key(0))  # reading 0 makes it the most recently used
    for n in range(4, 7):
        cache.put(key(n), bytes(1000), {})
    entries, size = cache.stats()
    assert size <= 5000
    assert cache.contains(key(0)), "recently read entries survive"
    assert not cache.contains(key(1)), "the least recently used goes first"


WRITER = """
import sys
sys.path.insert(0, {repo!r})
from runflow_api.money.cache import ResultCache, cache_key
from runflow_api.product_isolation import IsolationParams
cache = ResultCache(__import__("pathlib").Path({directory!r}))
me = int(sys.argv[1])
for round_ in range(60):
    for n in range(10):
        key = cache_key(pixel_digest=f"p{{n}}", model="m", service_id="s",
                        options=IsolationParams("1:1", "1K").key_fields())
        payload = bytes([n]) * (20000 + n) + f"writer {{me}} round {{round_}}".encode()
        cache.put(key, payload, {{"writer": me, "round": round_, "n": n}})
        hit = cache.get(key)
        assert hit is None or hit.image_bytes[:20000 + n] == bytes([n]) * (20000 + n), "torn read"
"""


def test_two_processes_filling_one_cache_leave_no_corrupt_entry(tmp_path):
    script = textwrap.dedent(WRITER.format(repo=str(REPO), directory=str(tmp_path / "shared")))
    writers = [subprocess.Popen([sys.executable, "-c", script, str(me)], stderr=subprocess.PIPE) for me in (1, 2)]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err.decode()
    cache = ResultCache(tmp_path / "shared")
    for n in range(10):
        hit = cache.get(key(n))
        assert hit is not None, f"entry {n} unreadable after concurrent writes"
        assert hit.image_bytes.startswith(bytes([n]) * (20000 + n))
        assert hit.meta["n"] == n
    assert not list((tmp_path / "shared").rglob("*.tmp")), "no temporary files left behind"


def test_journal_intent_run_complete_and_key_reuse(tmp_path):
    journal = RunJournal(tmp_path)
    first = journal.record_intent("k1", "svc", {"input": {"a": 1}})
    again = journal.record_intent("k1", "svc", {"input": {"a": 2}})
    assert again.idempotency_key == first.idempotency_key, "an existing intent's key is reused"
    assert again.params == {"input": {"a": 1}}, "an existing intent's body is reused byte for byte"
    assert journal.find("k1").run_id is None
    journal.record_run("k1", "run-1")
    assert RunJournal(tmp_path).find("k1").run_id == "run-1", "another process sees it"
    assert [e.cache_key for e in journal.pending()] == ["k1"]
    journal.complete("k1")
    assert journal.find("k1") is None and journal.pending() == []


def test_idempotency_keys_are_derived_and_move_on_after_each_attempt(tmp_path):
    """Two processes sharing a journal send the same key for the same input (the service replays, not
    bills); another machine's or a wiped disk's differs (its body differs too, which would be a 409); a
    new attempt after a finished one (failed, evicted, forced) needs a new key, or it would replay."""
    one, same_dir, other_dir = RunJournal(tmp_path / "a"), RunJournal(tmp_path / "a"), RunJournal(tmp_path / "b")
    assert one.record_intent("x" * 64, "svc", {}).idempotency_key == same_dir.find("x" * 64).idempotency_key
    assert one.journal_id == same_dir.journal_id != other_dir.journal_id
    assert "x" * 40 in one.find("x" * 64).idempotency_key, "derived from the cache key"
    keys = []
    for _ in range(3):
        keys.append(one.record_intent("k" * 64, "svc", {}).idempotency_key)
        one.complete("k" * 64)
    assert len(set(keys)) == 3 and one.next_generation("k" * 64) == 3
    assert RunJournal(tmp_path / "a").next_generation("k" * 64) == 3, "kept on disk for the next process"


def test_journal_entries_expire(tmp_path):
    journal = RunJournal(tmp_path, max_age_s=0.05)
    journal.record_intent("k1", "svc", {})
    time.sleep(0.1)
    assert journal.find("k1") is None
    assert not list(tmp_path.glob("*.json")), "expired entries are pruned"


def test_finished_inputs_do_not_leave_a_file_each_for_good(tmp_path):
    """Closed entries of inputs never asked for again are deleted once they are past max_age_s."""
    journal = RunJournal(tmp_path, max_age_s=3600)
    for key in ("old1", "old2", "recent"):
        journal.record_intent(key, "svc", {})
    journal.record_intent("open-old", "svc", {})
    for key in ("old1", "old2"):
        journal.complete(key)
    long_ago = time.time() - 7200
    for key in ("old1", "old2", "open-old"):
        os.utime(tmp_path / f"{key}.json", (long_ago, long_ago))
    RunJournal(tmp_path, max_age_s=3600).complete("recent")  # a new process's first completion prunes
    assert sorted(path.name for path in tmp_path.glob("*.json")) == ["recent.json"]
    assert (tmp_path / "journal-id").exists(), "only entries are pruned"


def test_corrupt_journal_entry_is_absent_and_kept_aside(tmp_path, caplog):
    (tmp_path / "k1.json").write_text("{not json")
    assert RunJournal(tmp_path).find("k1") is None
    assert "malformed" in caplog.text and (tmp_path / "k1.json.malformed").read_text() == "{not json"


@pytest.mark.parametrize(
    ("field", "value"),
    [("created_at", "yesterday"), ("params", "input"), ("run_id", 12345), ("generation", True), ("extra", 1)],
)
def test_wrongly_typed_journal_entry_is_absent_with_one_warning(tmp_path, caplog, field, value):
    entry = {"cache_key": "k1", "idempotency_key": "i", "service_id": "s", "run_id": "run-9",
             "created_at": time.time(), "updated_at": time.time(), "params": {}}
    entry[field] = value
    (tmp_path / "k1.json").write_text(json.dumps(entry))
    journal = RunJournal(tmp_path)
    for _ in range(3):
        assert journal.find("k1") is None and journal.pending() == []
        assert journal.next_generation("k1") == 0
    warnings = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(warnings) == 1, "one warning, not one per call"
    named = "run-9" if field != "run_id" else "12345"
    assert named in warnings[0].getMessage(), "a possibly paid run id is never dropped silently"
    assert (tmp_path / "k1.json.malformed").exists()
    journal.record_intent("k1", "svc", {"input": {}})  # and the input is usable again
    assert journal.find("k1") is not None


@pytest.mark.parametrize("entry", [{}, {"run_id": "run-7"}, {"cache_key": "k1", "idempotency_key": "i"}])
def test_journal_entry_with_missing_fields_is_set_aside(tmp_path, caplog, entry):
    """An object without the fields every entry has is malformed too, not a TypeError for the batch."""
    (tmp_path / "k1.json").write_text(json.dumps(entry))
    journal = RunJournal(tmp_path)
    assert journal.find("k1") is None and journal.next_generation("k1") == 0
    warnings = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(warnings) == 1 and "missing field" in warnings[0], warnings
    assert ("run-7" in warnings[0]) == ("run_id" in entry), "a possibly paid run id is named"
    assert (tmp_path / "k1.json.malformed").exists()


def test_an_empty_journal_object_does_not_stop_a_batch(emu, client_for, tmp_path, caplog):
    client = client_for(emu)
    client.isolate(product_photo(1))
    [entry_path] = (tmp_path / "data" / "journal").glob("*.json")
    entry_path.write_text("{}")
    outcomes = client.isolate_many([product_photo(1), product_photo(2)], force_rerun=True)
    assert [type(o).__name__ for o in outcomes] == ["IsolationResult", "IsolationResult"], outcomes
    assert emu.stats["creates"] == 3
    assert entry_path.with_name(entry_path.name + ".malformed").read_text() == "{}"
    assert caplog.text.count("is malformed") == 1


def test_empty_objects_in_every_local_store_are_survived(emu, client_for, tmp_path, caplog):
    """`{}` where each store keeps a JSON object (cache metadata, a ledger line, learned durations, a
    journal entry): nothing paid is paid again, and the next batch runs."""
    client = client_for(emu)
    first = client.isolate(product_photo(1))
    assert client.cache is not None
    client.cache.put(first.cache_key, client.cache.get(first.cache_key).image_bytes, {})
    data = tmp_path / "data"
    with open(data / "ledger.jsonl", "a", encoding="utf-8") as ledger:
        ledger.write("{}\n")
    (data / "durations.json").write_text(json.dumps({"format": "runflow-durations-v1", "entries": {"x": {}}}))
    [entry_path] = (data / "journal").glob("*.json")
    entry_path.write_text("{}")
    again = client_for(emu)
    outcomes = again.isolate_many([product_photo(1), product_photo(2)])
    assert [type(o).__name__ for o in outcomes] == ["IsolationResult", "IsolationResult"], outcomes
    assert outcomes[0].cached and emu.stats["creates"] == 2, "the paid image is served, the new one made"
    assert again.ledger.totals().all_runs == 2


def test_ledger_dedupes_and_totals_by_service(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.record("r1", Decimal("0.27"), "k1", service_id="real", list_price=False)
    ledger.record("r1", Decimal("0.27"), "k1", service_id="real", list_price=False)
    ledger.record("r2", Decimal("0.27"), "k2", service_id="emulator", list_price=True)
    assert ledger.totals().session_runs == 2
    assert ledger.totals("real").all_cost == Decimal("0.27")
    fresh = Ledger(tmp_path / "ledger.jsonl")
    fresh.record("r1", Decimal("0.27"), "k1", service_id="real", list_price=False)
    assert fresh.totals().all_runs == 2 and fresh.totals().session_runs == 0
    lines = (tmp_path / "ledger.jsonl").read_text().splitlines()
    assert [json.loads(line)["run_id"] for line in lines] == ["r1", "r2"]


def test_ledger_reads_only_new_lines_and_tolerates_a_torn_tail(tmp_path):
    path = tmp_path / "ledger.jsonl"
    reader = Ledger(path)
    writer = Ledger(path)
    writer.record("r1", Decimal("0.27"), "k", service_id="s", list_price=False)
    assert reader.totals().all_runs == 1
    with open(path, "a") as handle:
        handle.write('{"run_id": "r2", "cost": "0.2')  # a write in progress
    assert reader.totals().all_runs == 1
    with open(path, "a") as handle:
        handle.write('7", "cache_key": "k2"}\n')
    assert reader.totals().all_runs == 2 and reader.totals().all_cost == Decimal("0.54")
