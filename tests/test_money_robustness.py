"""Money bookkeeping under hostile conditions: an unwritable ledger, hostile costs, malformed run ids.

Each case is a real file on disk or a real emulator over loopback answering the hostile value. The rule
under test: recording or reading what was spent never costs the user a paid result, a bad number never
reaches the totals, and a run the service may have billed is never left stuck without a way to find it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from support import EMULATOR_KEY, product_photo

from runflow_api.errors import ServiceUnavailable
from runflow_api.money.ledger import Ledger
from runflow_api.product_isolation import PRICE_PER_IMAGE
from runflow_api.service.runs import Run

REPO = Path(__file__).resolve().parents[1]


def ledger_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "ledger" in r.getMessage()]


# -- 1. an unwritable ledger never withholds a paid result -------------------------------------------


def test_a_directory_in_place_of_the_ledger_keeps_runs_pending_and_warns_once(tmp_path, caplog):
    path = tmp_path / "ledger.jsonl"
    path.mkdir()
    ledger = Ledger(path)
    ledger.record("r1", Decimal("0.27"), "k1", service_id="real", list_price=False)
    ledger.record("r2", Decimal("0.30"), "k2", service_id="emulator", list_price=False)
    totals = ledger.totals()
    assert (totals.session_runs, totals.session_cost) == (2, Decimal("0.57"))
    assert (totals.all_runs, totals.all_cost) == (2, Decimal("0.57")), "pending runs count as spent"
    assert ledger.totals("real").session_cost == Decimal("0.27")
    assert [entry["run_id"] for entry in ledger.entries()] == ["r1", "r2"]
    warnings = [w for w in ledger_warnings(caplog) if "cannot write" in w]
    assert len(warnings) == 1, warnings
    assert str(path) in warnings[0] and "remove the directory" in warnings[0]

    path.rmdir()  # the user follows the advice: the next totals() writes what was pending
    assert ledger.totals().all_runs == 2
    assert [json.loads(line)["run_id"] for line in path.read_text().splitlines()] == ["r1", "r2"]
    fresh = Ledger(path)
    assert (fresh.totals().all_runs, fresh.totals().all_cost) == (2, Decimal("0.57"))
    ledger.record("r3", Decimal("0.27"), "k3", service_id="real", list_price=False)
    assert ledger.totals().session_runs == 3 and len(path.read_text().splitlines()) == 3


def test_a_file_in_place_of_the_ledger_folder_is_only_a_warning(tmp_path, caplog):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    ledger = Ledger(blocker / "ledger.jsonl")
    ledger.record("r1", Decimal("0.27"), "k1", service_id="s", list_price=False)
    assert ledger.totals().session_runs == 1 and ledger.totals().all_cost == Decimal("0.27")
    warnings = [w for w in ledger_warnings(caplog) if "cannot write" in w]
    assert len(warnings) == 1 and str(blocker / "ledger.jsonl") in warnings[0]


def test_a_full_disk_tears_no_line_and_the_pending_runs_are_written_later(tmp_path):
    """`ulimit -f` makes the OS write part of a line, then refuse: the torn fragment must not swallow the
    line written once space is back, and the process must keep going."""
    path = tmp_path / "ledger.jsonl"
    script = textwrap.dedent(
        f"""
        import logging, resource, sys
        from decimal import Decimal
        from runflow_api.money.ledger import Ledger
        logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        ledger = Ledger({str(path)!r})
        resource.setrlimit(resource.RLIMIT_FSIZE, (60, hard))  # a disk with room for 60 bytes
        ledger.record("r1", Decimal("0.27"), "k1", service_id="s", list_price=False)
        ledger.record("r2", Decimal("0.27"), "k2", service_id="s", list_price=False)
        totals = ledger.totals()
        print("DURING", totals.session_runs, totals.all_runs, totals.all_cost)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space is back
        totals = ledger.totals()
        print("AFTER", totals.session_runs, totals.all_runs, totals.all_cost)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "DURING 2 2 0.54" in done.stdout and "AFTER 2 2 0.54" in done.stdout
    assert done.stdout.count("cannot write") == 1 and "free disk space" in done.stdout
    assert 0 < len(path.read_bytes().split(b"\n")[0]) < 100, "the OS did write a torn fragment first"
    fresh = Ledger(path)
    assert (fresh.totals().all_runs, fresh.totals().all_cost) == (2, Decimal("0.54"))


def test_an_unreadable_ledger_gives_totals_from_this_process(tmp_path, caplog):
    path = tmp_path / "ledger.jsonl"
    path.mkdir()
    ledger = Ledger(path)
    assert ledger.totals().all_runs == 0 and ledger.entries() == []
    assert ledger.totals().all_runs == 0
    warnings = [w for w in ledger_warnings(caplog) if "cannot read" in w]
    assert len(warnings) == 1 and str(path) in warnings[0]


def test_an_unwritable_ledger_does_not_withhold_the_paid_result(emu, client_for, tmp_path, caplog):
    path = tmp_path / "data" / "ledger.jsonl"
    path.mkdir(parents=True)
    client = client_for(emu)
    result = client.isolate(product_photo(1))
    assert result.image is not None and result.cost == PRICE_PER_IMAGE
    assert emu.stats["creates"] == 1
    assert client.ledger.totals().session_runs == 1
    assert any(str(path) in w and "cannot write" in w for w in ledger_warnings(caplog))
    again = client.isolate(product_photo(1))
    assert again.cached and emu.stats["creates"] == 1, "the result was stored: no second payment"
    assert EMULATOR_KEY not in caplog.text


# -- 2. hostile costs from the service or on disk never reach the totals -----------------------------

HOSTILE_COSTS: list[Any] = ["sNaN", "NaN", "-5", "1e9", "Infinity", "-0.01", "100.01", "0.27 dollars", "",
                            float("nan"), 1e9, -1, [0.27], {"usd": "0.27"}, True]


@pytest.mark.parametrize("hostile", HOSTILE_COSTS, ids=repr)
def test_a_hostile_cost_from_the_service_is_recorded_at_list_price(emu, client_for, caplog, hostile):
    emu.faults.cost_value = hostile
    client = client_for(emu)
    result = client.isolate(product_photo(2))
    assert result.cost == PRICE_PER_IMAGE
    totals = client.ledger.totals()
    assert (totals.session_cost, totals.all_cost) == (PRICE_PER_IMAGE, PRICE_PER_IMAGE)
    (entry,) = client.ledger.entries()
    assert entry["list_price"] is True and entry["cost"] == str(PRICE_PER_IMAGE)
    (warning,) = [r.getMessage() for r in caplog.records if "implausible cost" in r.getMessage()]
    assert result.run_id in warning and repr(hostile)[:20] in warning


@pytest.mark.parametrize("fine", ["0", "0.30", "100", 0.27])
def test_a_plausible_cost_from_the_service_is_kept(emu, client_for, caplog, fine):
    emu.faults.cost_value = fine
    client = client_for(emu)
    result = client.isolate(product_photo(3))
    assert result.cost == Decimal(str(fine))
    assert client.ledger.totals().all_cost == Decimal(str(fine))
    assert "implausible cost" not in caplog.text


def test_a_hostile_cost_is_warned_once_per_run(caplog):
    body = {"id": "run-1", "status_code": "succeeded", "cost": "sNaN"}
    runs = [Run.from_json(body, what="Reading run run-1") for _ in range(3)]
    assert all(run.cost is None for run in runs)
    assert sum("implausible cost" in r.getMessage() for r in caplog.records) == 1


HOSTILE_LINES = [
    {"run_id": "bad-snan", "cost": "sNaN"},
    {"run_id": "bad-nan", "cost": "NaN"},
    {"run_id": "bad-neg", "cost": "-5"},
    {"run_id": "bad-huge", "cost": "1e9"},
    {"run_id": "bad-inf", "cost": "Infinity"},
    {"run_id": "bad-number", "cost": 0.27},
    {"run_id": "bad-null", "cost": None},
    {"run_id": "bad-list", "cost": ["0.27"]},
    {"run_id": ["not", "a", "str"], "cost": "0.27"},
    {"run_id": "", "cost": "0.27"},
    ["run_id", "cost"],
    "just a string",
    42,
]


def test_hostile_lines_on_disk_are_skipped_with_one_warning(tmp_path, caplog):
    path = tmp_path / "ledger.jsonl"
    good = {"run_id": "good", "cost": "0.27", "cache_key": "k", "service_id": "s", "list_price": False}
    lines = [json.dumps(line).encode() for line in HOSTILE_LINES] + [json.dumps(good).encode(), b"not json",
                                                                      b"\xff\xfe not utf-8"]
    path.write_bytes(b"\n".join(lines) + b"\n")
    ledger = Ledger(path)
    totals = ledger.totals()
    assert (totals.all_runs, totals.all_cost) == (1, Decimal("0.27"))
    assert ledger.totals("s").all_cost == Decimal("0.27")
    assert [entry["run_id"] for entry in ledger.entries()] == ["good"]
    ledger.record("new", Decimal("0.27"), "k2", service_id="s", list_price=False)
    assert ledger.totals().all_cost == Decimal("0.54")
    warnings = [w for w in ledger_warnings(caplog) if "skipped" in w]
    assert len(warnings) == 1 and str(path) in warnings[0] and str(len(HOSTILE_LINES) + 2) in warnings[0]


# -- 3. a malformed run id from a create is refused before it is journaled ---------------------------


@pytest.mark.parametrize("run_id_format", ["{id}/x", "../{id}", "{id} ", "{id}\n", "", "x" * 300])
def test_a_malformed_run_id_is_refused_with_the_idempotency_key(emu, client_for, tmp_path, run_id_format):
    emu.faults.run_id_format = run_id_format
    client = client_for(emu)
    with pytest.raises(ServiceUnavailable) as first:
        client.isolate(product_photo(4))
    message = str(first.value)
    (entry_file,) = (tmp_path / "data" / "journal").glob("*.json")
    entry = json.loads(entry_file.read_text())
    assert entry["run_id"] is None, "the malformed id never reaches the journal"
    assert entry["idempotency_key"] in message
    assert "malformed run id" in message and "billed" in message and "support" in message
    assert first.value.code == "MALFORMED_RUN_ID"
    assert EMULATOR_KEY not in message
    assert emu.stats["creates"] == 1

    with pytest.raises(ServiceUnavailable) as second:
        client.isolate(product_photo(4))
    assert entry["idempotency_key"] in str(second.value)
    assert emu.stats["creates"] == 1, "the retry replays the journaled create: no second payment"
    assert emu.stats["idempotent_replays"] == 1


def test_a_well_formed_run_id_still_passes(emu, client_for):
    emu.faults.run_id_format = "{id}"
    result = client_for(emu).isolate(product_photo(5))
    assert result.run_id in emu.runs
