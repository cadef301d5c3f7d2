"""Pure pieces: key handling, base URLs, parameters, output-URL extraction, poll timing, status tally."""

from __future__ import annotations

import os
import stat
from decimal import Decimal

import pytest

from runflow_api.errors import InputRejected, MissingApiKey
from runflow_api.flow.progress import ProgressTally
from runflow_api.money.durations import DurationModel
from runflow_api.pictures.result_types import ProgressEvent
from runflow_api.product_isolation import IsolationParams, nearest_aspect_ratio
from runflow_api.service import address as service_address
from runflow_api.service.runs import PollPolicy, Run, extract_output_urls, model_path, run_path
from runflow_api.settings import config, directories
from runflow_api.settings.redact import url_for_display

KEY = "rf_live_abcdefghijklmnop9876"


def test_mask_key_shows_prefix_and_last_four_only():
    masked = config.mask_key(KEY)
    assert masked == "rf_live_…9876"
    assert "abcdefgh" not in masked
    assert config.mask_key(None) == "(none)"
    assert config.mask_key("rf_live_ab") == "rf_live_…"


def test_key_file_is_written_0600_and_read_back(tmp_path):
    path = tmp_path / "sub" / "api_key"
    config.write_key_file(KEY, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert config.read_key_file(path) == KEY
    assert config.delete_key_file(path) and not path.exists()
    assert config.delete_key_file(path) is False


def test_env_key_wins_over_the_file(monkeypatch):
    config.write_key_file(KEY)
    assert config.key_source() == "file" and config.resolve_api_key() == KEY
    monkeypatch.setenv("RUNFLOW_API_KEY", "rf_live_fromtheenvironment1")
    assert config.key_source() == "env"
    assert config.resolve_api_key() == "rf_live_fromtheenvironment1"


def test_no_key_anywhere_names_every_place_to_set_one():
    with pytest.raises(MissingApiKey) as caught:
        config.resolve_api_key()
    assert "RUNFLOW_API_KEY" in str(caught.value) and str(directories.key_file_path()) in str(caught.value)


def test_configure_defaults_moves_files_under_the_host_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("RUNFLOW_KEY_FILE")
    monkeypatch.delenv("RUNFLOW_CACHE_DIR")
    saved = (directories._defaults.key_file, directories._defaults.cache_dir, directories._defaults.data_dir)
    try:
        directories.configure_defaults(key_file=tmp_path / "k", cache_dir=tmp_path / "c", data_dir=tmp_path / "d")
        assert directories.key_file_path() == tmp_path / "k" and directories.cache_dir() == tmp_path / "c"
        assert directories.data_dir() != tmp_path / "d", "RUNFLOW_DATA_DIR still wins over the host's default"
    finally:
        directories._defaults.key_file, directories._defaults.cache_dir, directories._defaults.data_dir = saved


@pytest.mark.parametrize(
    ("url", "ok"),
    [("https://api.runflow.io", True), ("http://127.0.0.1:9000", True), ("http://localhost:1", True),
     ("http://[::1]:80", True), ("http://api.runflow.io", False), ("ftp://x", False), ("api.runflow.io", False)],
)
def test_base_url_rules(url, ok):
    if ok:
        assert service_address.resolve_base_url(url) == url
    else:
        with pytest.raises(InputRejected):
            service_address.resolve_base_url(url)


def test_url_for_display_drops_signatures():
    assert url_for_display("https://s.example/a/b.png?sig=SECRET&expires=1") == "https://s.example/a/b.png"


@pytest.mark.parametrize(("w", "h", "ratio"), [(100, 100, "1:1"), (400, 300, "4:3"), (300, 400, "3:4"),
                                                (1000, 10, "21:9"), (10, 1000, "9:16"), (1190, 1000, "5:4")])
def test_nearest_ratio(w, h, ratio):
    assert nearest_aspect_ratio(w, h) == ratio


def test_params_validation_and_prompt_cleanup():
    assert IsolationParams("auto", "4K", "  the left shoe ").prompt == "the left shoe"
    assert IsolationParams(prompt="   ").prompt is None
    assert "prompt" not in IsolationParams("1:1", "1K", "").run_input("https://x/y.jpg")
    with pytest.raises(InputRejected, match="aspect_ratio"):
        IsolationParams("1:2")
    with pytest.raises(InputRejected, match="resolution"):
        IsolationParams("1:1", "2k")


def test_output_urls_are_extracted_in_the_contract_order():
    assert extract_output_urls({"outputs": [{"url": "a"}, {"url": "b"}], "image_urls": ["c"]}) == ["a", "b"]
    assert extract_output_urls({"image_urls": ["c"], "image": "d"}) == ["c"]
    assert extract_output_urls({"image": "d", "url": "e"}) == ["d"]
    assert extract_output_urls({"image": ["d1", "d2"]}) == ["d1", "d2"]
    assert extract_output_urls({"image": {"url": "f"}}) == ["f"]
    assert extract_output_urls({"url": "g", "output_url": "h"}) == ["g"]
    assert extract_output_urls({"output_url": "h"}) == ["h"]
    assert extract_output_urls({"outputs": [], "image_urls": []}) == []
    assert extract_output_urls(None) == []


def test_run_reads_every_failure_field_variant():
    run = Run.from_json({"id": "r1", "status_code": "FAILED", "failure_stage": "inference",
                         "error": {"code": "NO_PRODUCT", "message": "No product found"}}, what="t")
    assert (run.status, run.failure_code, run.failure_message, run.failure_stage) == (
        "failed", "NO_PRODUCT", "No product found", "inference")
    error = run.failure()
    assert "NO_PRODUCT" in str(error) and "inference" in str(error) and "r1" in str(error)
    assert Run.from_json({"id": "r2", "status": "running"}, what="t").status == "running"
    assert Run.from_json({"id": "r3", "status_code": "succeeded", "cost": "0.27"}, what="t").cost == Decimal("0.27")


def test_service_duration_from_the_run_timestamps():
    timed = Run.from_json({"id": "r", "status_code": "succeeded", "created_at": "2026-11-23T10:00:00.250+00:00",
                           "completed_at": "2026-11-23T10:00:10.000Z"}, what="t")
    assert timed.service_duration == pytest.approx(9.75)
    assert Run.from_json({"id": "r", "created_at": "garbage", "completed_at": None}, what="t").service_duration is None


def test_ids_are_encoded_and_path_tricks_refused():
    assert model_path("runflow/product-isolation") == "/v1/models/runflow/product-isolation"
    assert model_path("a b/c") == "/v1/models/a%20b/c"
    for bad in ("runflow//x", "../x", "runflow/."):
        with pytest.raises(InputRejected):
            model_path(bad)
    with pytest.raises(InputRejected):
        run_path("a/b")


def test_poll_policy_is_sparse_early_and_dense_near_the_expected_end():
    policy = PollPolicy()
    assert policy.next_delay(0.0, None, 0.0) == policy.first_poll
    assert policy.next_delay(0.0, 10.0, 0.0) == policy.idle_interval
    assert policy.next_delay(9.5, 10.0, 2.0) == pytest.approx(0.2)
    assert policy.next_delay(9.8, 10.0, 0.2) == policy.dense_interval
    assert policy.next_delay(13.0, 10.0, 0.1) > policy.dense_interval, "a late run backs off again"


def test_duration_model_trusts_precise_samples_and_leans_low():
    model = DurationModel()
    model.observe("2K", 8.0, 10.0)  # coarse: only "after 8 s" is safe
    assert model.expected("2K") == 8.0
    model.observe("2K", 9.95, 10.05)  # precise: replaces the coarse estimate
    assert model.expected("2K") == pytest.approx(10.0)
    model.observe("2K", 11.9, 12.1)
    assert 10.0 < model.expected("2K") < 12.0, "later precise samples are averaged"
    model.observe("2K", 3.9, 4.1)
    assert model.expected("2K") == pytest.approx(4.0), "a shorter run pulls the estimate straight down"
    model.observe("2K", 2.0, 9.0)
    assert model.expected("2K") == pytest.approx(4.0), "a coarse sample that ended later changes nothing"
    model.observe("2K", 1.0, 3.0)
    assert model.expected("2K") == 1.0, "a coarse sample that surely ended sooner lowers it"
    assert model.expected("4K") is None


def test_tally_counts_and_status_line():
    tally = ProgressTally(4)
    tally.update(ProgressEvent("cached", 0))
    tally.update(ProgressEvent("created", 1, run_id="a", status="queued"))
    tally.update(ProgressEvent("created", 2, run_id="b", status="queued"))
    tally.update(ProgressEvent("status", 2, run_id="b", status="running"))
    tally.update(ProgressEvent("resumed", 3, run_id="c"))
    tally.update(ProgressEvent("done", 1, run_id="a", cost=Decimal("0.27")))
    snap = tally.snapshot()
    assert (snap.finished, snap.running, snap.queued, snap.cached, snap.resumed) == (2, 1, 1, 1, 1)
    line = snap.status_line()
    assert line.startswith("2/4 done") and "1 running" in line and "$0.27" in line
    assert "emulator" in ProgressTally(1, emulator=True).snapshot().status_line()
