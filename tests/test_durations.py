"""Learned run durations on disk: a new process polls as well as an old one; the file is bounded,
forgets stale figures, keeps services apart and survives damage."""

from __future__ import annotations

import json
import time

from support import product_photo

from runflow_api.money.durations import DurationModel, DurationStore


def test_a_new_client_starts_from_what_an_earlier_one_learned(emulator_factory, client_for, tmp_path):
    emu = emulator_factory(latency=0.4)
    client_for(emu).isolate(product_photo(), resolution="1K")
    learned = client_for(emu)._engine.durations.expected("1K")  # a fresh client, as in a new process
    assert learned is not None and 0.3 < learned < 0.6
    assert client_for(emu)._engine.durations.expected("2K") is None, "per resolution"
    document = json.loads((tmp_path / "data" / "durations.json").read_text())
    assert [name.split("\t")[-1] for name in document["entries"]] == ["1K"]


def test_scopes_are_kept_apart(tmp_path):
    store = DurationStore(tmp_path / "d.json")
    DurationModel(store=store, scope="emulator\tm").observe("2K", 1.0, 1.0)
    DurationModel(store=store, scope="https://api\tm").observe("2K", 9.0, 9.0)
    assert DurationModel(store=store, scope="emulator\tm").expected("2K") == 1.0
    assert DurationModel(store=store, scope="https://api\tm").expected("2K") == 9.0
    assert DurationModel(store=store, scope="other\tm").expected("2K") is None


def test_stale_figures_are_forgotten_and_the_file_is_bounded(tmp_path):
    path = tmp_path / "d.json"
    store = DurationStore(path, max_age_s=60, max_entries=3)
    for n in range(5):
        DurationModel(store=store, scope=f"s{n}").observe("1K", 1.0 + n, 1.0 + n)
    assert len(json.loads(path.read_text())["entries"]) == 3
    assert DurationModel(store=store, scope="s4").expected("1K") == 5.0, "the newest are kept"
    assert DurationModel(store=store, scope="s0").expected("1K") is None
    document = json.loads(path.read_text())
    for entry in document["entries"].values():
        entry["t"] = time.time() - 120
    path.write_text(json.dumps(document))
    assert DurationModel(store=store, scope="s4").expected("1K") is None, "older than max_age_s"


def test_small_moves_are_not_written_every_run(tmp_path):
    path = tmp_path / "d.json"
    model = DurationModel(store=DurationStore(path), scope="s")
    model.observe("1K", 10.0, 10.0)
    written = path.stat().st_mtime_ns
    time.sleep(0.01)
    model.observe("1K", 10.01, 10.01)  # moves the estimate by 0.03%
    assert path.stat().st_mtime_ns == written
    model.observe("1K", 5.0, 5.0)
    assert DurationModel(store=DurationStore(path), scope="s").expected("1K") == 5.0


def test_a_damaged_file_is_ignored_with_one_warning_and_then_replaced(tmp_path, caplog):
    path = tmp_path / "d.json"
    good = {"s": 2.0, "p": True, "t": time.time()}
    for content in ("{not json", '{"format": "other", "entries": {}}', json.dumps(
            {"format": "runflow-durations-v1", "entries": {"s\t1K": {**good, "s": "NaN"}, "s\t2K": {**good, "s": -1},
                                                           "s\t4K": {**good, "p": "yes"}}})):
        path.write_text(content)
        assert DurationModel(store=DurationStore(path), scope="s").expected("1K") is None
    store = DurationStore(path)
    path.write_text("{not json")
    caplog.clear()
    for _ in range(3):
        DurationModel(store=store, scope="s").expected("1K")
    assert caplog.text.count("Learned run durations") == 1, "one warning per store, not per read"
    DurationModel(store=store, scope="s").observe("1K", 2.0, 2.0)
    assert DurationModel(store=DurationStore(path), scope="s").expected("1K") == 2.0
