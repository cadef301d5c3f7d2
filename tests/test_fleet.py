"""The fleet store on a real redis-server: each client here stands for a machine (its own cache and data
directories), and the emulator counts what was paid for."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from redis_support import free_port
from support import product_photo

from runflow_api import InputRejected, RunflowClient, TeamBudgetExceeded
from runflow_api.emulator.faults import Faults
from runflow_api.fleet import SharedResults, SharedStore
from runflow_api.money.cache import pack_entry
from runflow_api.product_isolation import IsolationParams


def machine(client_for, emu, redis_url: str, tmp_path: Path, name: str, **options) -> RunflowClient:
    """A client with its own disk, as on another machine of the fleet."""
    options.setdefault("memory_cache", False)
    return client_for(emu, cache_dir=tmp_path / name / "cache", data_dir=tmp_path / name / "data",
                      shared_store=SharedStore(redis_url, prefix=f"t{name}" if options.pop("own_prefix", False)
                                               else "test", **options.pop("store_options", {})), **options)


def test_a_result_paid_on_one_machine_is_free_on_another(client_for, emu, redis_server, tmp_path):
    first = machine(client_for, emu, redis_server.url, tmp_path, "a")
    second = machine(client_for, emu, redis_server.url, tmp_path, "b")
    paid = first.isolate(product_photo(1))
    assert (emu.stats["creates"], emu.stats["uploads"]) == (1, 1)
    plan = second.plan([product_photo(1), product_photo(2)])
    assert (plan.cached, plan.to_create) == (1, 1), "the plan counts the fleet's result as free"
    hit = second.isolate(product_photo(1))
    assert (emu.stats["creates"], emu.stats["uploads"]) == (1, 1), "no upload and no run on the second machine"
    assert hit.cached and hit.shared_hit and hit.run_id == paid.run_id
    assert hit.image_bytes == paid.image_bytes
    again = second.isolate(product_photo(1))
    assert again.cached and not again.shared_hit, "the shared entry was copied to the local cache"


def test_the_ledger_is_shared_and_a_run_is_counted_once(client_for, emu, redis_server, tmp_path):
    first = machine(client_for, emu, redis_server.url, tmp_path, "a")
    second = machine(client_for, emu, redis_server.url, tmp_path, "b")
    first.isolate(product_photo(1))
    second.isolate(product_photo(2))
    second.isolate(product_photo(1))  # a shared hit: no run, nothing to count
    assert first.fleet is not None
    spent, reserved, shared = first.fleet.money.today()
    assert (spent, reserved, shared) == (Decimal("0.54"), Decimal(0), True)


def test_team_budget_refuses_before_any_create_with_the_figures(client_for, emu, redis_server, tmp_path):
    spender = machine(client_for, emu, redis_server.url, tmp_path, "a", team_budget="1.00")
    spender.isolate_many([product_photo(seed) for seed in range(3)])
    other = machine(client_for, emu, redis_server.url, tmp_path, "b", team_budget="1.00")
    with pytest.raises(TeamBudgetExceeded) as refused:
        other.isolate_many([product_photo(seed) for seed in range(10, 12)])
    assert emu.stats["creates"] == 3
    message = str(refused.value)
    assert "$0.81 of $1.00" in message and "2 new paid run(s) costing $0.54" in message, message
    assert refused.value.limit == "1.00"


def test_team_budget_needs_a_shared_store(client_for, emu):
    with pytest.raises(InputRejected, match="RUNFLOW_SHARED_STORE"):
        client_for(emu, team_budget="5")


def test_team_budget_from_the_environment(client_for, emu, redis_server, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNFLOW_SHARED_STORE", redis_server.url)
    monkeypatch.setenv("RUNFLOW_TEAM_BUDGET", "0.30")
    client = client_for(emu, cache_dir=tmp_path / "c", data_dir=tmp_path / "d")
    assert client.fleet is not None and client.fleet.money.team_budget == Decimal("0.30")
    client.isolate(product_photo(1))
    with pytest.raises(TeamBudgetExceeded, match=r"\$0.27 of \$0.30"):
        client.isolate(product_photo(2))
    assert emu.stats["creates"] == 1


def test_a_failed_run_gives_its_reservation_back(client_for, emulator_factory, redis_server, tmp_path):
    emu = emulator_factory(faults=Faults(fail_rate=1.0))
    client = machine(client_for, emu, redis_server.url, tmp_path, "a", team_budget="0.27")
    for _ in range(2):  # the second try fits again: the failed, unbilled run released its reservation
        outcome = client.isolate_many([product_photo(1)])[0]
        assert not hasattr(outcome, "image"), "the emulator fails every run here"
    assert emu.stats["creates"] == 2
    assert client.fleet is not None and client.fleet.money.today()[:2] == (Decimal(0), Decimal(0))


def test_learned_durations_reach_a_new_machine(client_for, emulator_factory, redis_server, tmp_path):
    emu = emulator_factory(latency=0.4)
    old = machine(client_for, emu, redis_server.url, tmp_path, "a")
    old.isolate(product_photo(1), resolution="1K")
    learned = old._engine.durations.expected("1K")
    assert learned is not None and 0.2 < learned < 2
    new = machine(client_for, emu, redis_server.url, tmp_path, "b")
    assert new._engine.durations.expected("1K") == pytest.approx(learned)


def test_foreign_and_malformed_data_is_ignored_with_a_warning(client_for, emu, redis_server, tmp_path, caplog):
    client = machine(client_for, emu, redis_server.url, tmp_path, "a")
    key = client._job(product_photo(1), IsolationParams("1:1", "2K"), 0).cache_key
    store = client.fleet.store if client.fleet else None
    assert store is not None
    store.redis.set(store.key("result", key), b"not an entry")
    store.redis.set(store.key("journal", key), b"{\"cache_key\": 5}")
    store.redis.hset(store.key("durations"), f"{client.service_id}\trunflow/product-isolation\t4K", "garbage")
    store.redis.set(store.key("spent", time.strftime("%Y%m%d", time.gmtime())), "many")
    with caplog.at_level(logging.WARNING, logger="runflow_api"):
        result = client.isolate(product_photo(1))
        machine(client_for, emu, redis_server.url, tmp_path, "b")  # reads the garbage durations
    assert not result.cached and emu.stats["creates"] == 1
    ignored = [r.getMessage() for r in caplog.records if "ignoring" in r.getMessage()]
    assert any(":result:" in m for m in ignored) and any(":journal:" in m for m in ignored), ignored
    assert any("durations" in m for m in ignored), ignored
    assert client.fleet.store.available, "bad data is not an outage"
    assert client.fleet.money.today()[0] == Decimal("0.27"), "a foreign spend counter is replaced, not fatal"


def test_an_unreachable_store_warns_once_and_work_goes_on(client_for, emu, tmp_path, caplog):
    url = f"redis://:hunter2secret@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="runflow_api"):
        client = machine(client_for, emu, url, tmp_path, "a", team_budget="0.54")
        results = client.isolate_many([product_photo(seed) for seed in range(2)])
        with pytest.raises(TeamBudgetExceeded) as refused:  # the budget holds this machine alone to it
            client.isolate(product_photo(3))
    assert time.monotonic() - started < 15
    assert [type(r).__name__ for r in results] == ["IsolationResult", "IsolationResult"]
    assert emu.stats["creates"] == 2
    assert "$0.54 of $0.54" in str(refused.value)
    assert "on this machine (the shared store is unreachable)" in str(refused.value)
    warnings = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "127.0.0.1" in warnings[0] and "(password set)" in warnings[0]
    assert all("hunter2secret" not in r.getMessage() for r in caplog.records)
    assert client.fleet is not None and client.fleet.store.state()["connected"] is False
    assert "hunter2secret" not in repr(client.fleet.store.state())


def test_redis_lost_mid_batch_then_back(client_for, emulator_factory, redis_server, tmp_path, caplog):
    emu = emulator_factory(latency=1.0)
    client = machine(client_for, emu, redis_server.url, tmp_path, "a", store_options={"claim_ttl_s": 3.0})
    photos = [product_photo(seed) for seed in range(8)]
    outcomes: list = []
    worker = threading.Thread(target=lambda: outcomes.extend(client.isolate_many(photos)))
    with caplog.at_level(logging.WARNING, logger="runflow_api"):
        worker.start()
        deadline = time.monotonic() + 20
        while emu.stats["creates"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        redis_server.kill()
        worker.join(timeout=60)
    assert [type(o).__name__ for o in outcomes] == ["IsolationResult"] * 8
    assert emu.stats["creates"] == 8, "creates equal the unique inputs"
    lost = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(lost) == 1, lost
    redis_server.start()
    store = client.fleet.store if client.fleet else None
    assert store is not None
    deadline = time.monotonic() + 15
    while not store.available and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.available, "sharing resumes when Redis is back"
    client.isolate(product_photo(20))
    assert len(store.redis.keys(store.key("result", "*"))) == 1, "the new result is shared again"


def test_namespaces_keep_teams_apart(client_for, emu, redis_server, tmp_path):
    first = machine(client_for, emu, redis_server.url, tmp_path, "a", own_prefix=True)
    second = machine(client_for, emu, redis_server.url, tmp_path, "b", own_prefix=True)
    first.isolate(product_photo(1))
    second.isolate(product_photo(1))
    assert emu.stats["creates"] == 2, "another prefix is another team: nothing is shared"
    assert first.fleet is not None
    assert all(k.startswith(b"ta:v1:") or k.startswith(b"tb:v1:") for k in first.fleet.store.redis.keys("*"))


def test_without_the_redis_package_the_error_names_the_extra(tmp_path):
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "from runflow_api import RunflowClient, InputRejected\n"
        "try:\n"
        "    RunflowClient('rf_live_testsuite_0001', 'http://127.0.0.1:9', shared_store='redis://127.0.0.1:9/0')\n"
        "except InputRejected as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"RUNFLOW_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert "runflow-product-isolation[fleet]" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "redis://", "127.0.0.1:6379", "redis://h:notaport/0"])
def test_a_malformed_store_url_is_refused(url):
    with pytest.raises(InputRejected, match="shared store"):
        SharedStore(url)


def test_an_oversized_result_stays_local(redis_server):
    store = SharedStore(redis_server.url, max_result_bytes=1000)
    results = SharedResults(store)
    assert not results.put("k" * 64, pack_entry([b"x" * 2000], {}))
    assert results.put("j" * 64, pack_entry([b"x" * 10], {}))
    assert results.present(["k" * 64, "j" * 64]) == {"j" * 64}


def test_the_emulator_mode_shares_results_but_spends_no_budget(redis_server, monkeypatch):
    from runflow_api import service_choice as service

    monkeypatch.setenv("RUNFLOW_SHARED_STORE", redis_server.url)
    monkeypatch.setenv("RUNFLOW_TEAM_BUDGET", "0.27")
    monkeypatch.setenv("RUNFLOW_EMULATOR_LATENCY", "0.05")
    with service.make_client("emulator") as client:
        results = client.isolate_many([product_photo(1), product_photo(2)], resolution="1K")
        assert all(hasattr(r, "image") for r in results), "stand-in runs are free: no budget refuses them"
        assert client.fleet is not None and client.fleet.money.today()[:2] == (Decimal(0), Decimal(0))


def test_the_status_line_counts_the_fleet():
    from runflow_api.flow.progress import ProgressTally
    from runflow_api.pictures.result_types import ProgressEvent

    tally = ProgressTally(5)
    tally.update(ProgressEvent("waiting", 0, detail="machine"))
    tally.update(ProgressEvent("waiting", 1, detail="process"))
    tally.update(ProgressEvent("cached", 2, detail="shared"))
    tally.update(ProgressEvent("cached", 3, detail="waited:machine"))
    tally.update(ProgressEvent("cached", 4))
    line = tally.snapshot().status_line()
    assert "1 waiting for another process" in line and "1 waiting for another machine" in line, line
    assert "3 cached (1 shared, 1 after waiting for another machine)" in line, line


def test_a_redis_that_never_answers_costs_one_timeout_not_a_hang(client_for, emu, tmp_path, caplog):
    import socket

    silent = socket.create_server(("127.0.0.1", 0), backlog=8)  # accepts connections, never says a word
    try:
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="runflow_api"):
            client = machine(client_for, emu, url, tmp_path, "a")
            connect_s = time.monotonic() - started
            results = client.isolate_many([product_photo(seed) for seed in range(4)])
        assert 1.5 < connect_s < 4, f"one ~2 s timeout at start, not a hang ({connect_s:.1f} s)"
        assert all(hasattr(r, "image") for r in results) and emu.stats["creates"] == 4
        assert time.monotonic() - started < connect_s + 10, "no further waits on the silent store"
        assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
    finally:
        silent.close()


@pytest.mark.parametrize("expiry_ms", [None, 3_600_000], ids=["no expiry", "an hour, more than any claim of ours"])
def test_a_foreign_value_at_a_claim_key_never_blocks_the_input(client_for, emu, redis_server, tmp_path, caplog,
                                                               expiry_ms):
    client = machine(client_for, emu, redis_server.url, tmp_path, "a")
    key = client._job(product_photo(1), IsolationParams("1:1", "2K"), 0).cache_key
    assert client.fleet is not None
    client.fleet.store.redis.set(client.fleet.store.key("claim", key), "left here by hand", px=expiry_ms)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="runflow_api"):
        [result] = client.isolate_many([product_photo(1)], should_cancel=lambda: time.monotonic() - started > 10)
    assert not result.cached and emu.stats["creates"] == 1
    assert any("taken over" in r.getMessage() for r in caplog.records)


def test_a_claim_with_an_expiry_ours_can_have_is_waited_for(client_for, emu, redis_server, tmp_path):
    client = machine(client_for, emu, redis_server.url, tmp_path, "a", store_options={"claim_ttl_s": 20.0})
    key = client._job(product_photo(1), IsolationParams("1:1", "2K"), 0).cache_key
    assert client.fleet is not None
    client.fleet.store.redis.set(client.fleet.store.key("claim", key), "another machine", px=1500)
    started = time.monotonic()
    client.isolate(product_photo(1))
    assert time.monotonic() - started >= 1.2, "a claim that may be another machine's is respected until it expires"


def test_an_empty_object_under_the_shared_journal_key_is_ignored(client_for, emu, redis_server, tmp_path, caplog):
    first = machine(client_for, emu, redis_server.url, tmp_path, "a")
    first.isolate(product_photo(1))
    [entry_path] = (tmp_path / "a" / "data" / "journal").glob("*.json")
    store = first.fleet.store if first.fleet else None
    assert store is not None
    store.redis.set(store.key("journal", entry_path.stem), b"{}")
    second = machine(client_for, emu, redis_server.url, tmp_path, "b")
    with caplog.at_level(logging.WARNING, logger="runflow_api"):
        outcomes = second.isolate_many([product_photo(1), product_photo(2)], force_rerun=True)
    assert [type(o).__name__ for o in outcomes] == ["IsolationResult", "IsolationResult"], outcomes
    assert emu.stats["creates"] == 3
    ignored = [r.getMessage() for r in caplog.records if ":journal:" in r.getMessage()]
    assert len(ignored) == 1 and "missing field" in ignored[0], ignored


@pytest.mark.parametrize("budget", ["Infinity", "inf", float("inf"), "-Infinity", "NaN"])
def test_a_non_finite_team_budget_is_refused_up_front(client_for, emu, redis_server, tmp_path, budget):
    with pytest.raises(InputRejected, match="team_budget must be a finite dollar amount"):
        machine(client_for, emu, redis_server.url, tmp_path, "a", team_budget=budget)
    assert emu.stats["requests"] == 0


def test_a_non_finite_team_budget_from_the_environment_names_the_variable(client_for, emu, redis_server, tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("RUNFLOW_SHARED_STORE", redis_server.url)
    monkeypatch.setenv("RUNFLOW_TEAM_BUDGET", "Infinity")
    with pytest.raises(InputRejected, match="RUNFLOW_TEAM_BUDGET must be a finite dollar amount"):
        client_for(emu, cache_dir=tmp_path / "c", data_dir=tmp_path / "d")
    assert emu.stats["requests"] == 0


def test_the_team_budget_holds_when_the_service_bills_above_the_list_price(client_for, emulator_factory,
                                                                           redis_server, tmp_path):
    """Runs billed $0.50 against a $1.00 budget: the first create is priced before the others reserve, so
    two are paid and the third is refused; the fleet's spend never passes the budget."""
    emu = emulator_factory(latency=0.3)
    emu.faults.cost_value = "0.50"
    first = machine(client_for, emu, redis_server.url, tmp_path, "a", team_budget="1.00")
    second = machine(client_for, emu, redis_server.url, tmp_path, "b", team_budget="1.00")
    outcomes: list = []
    workers = [threading.Thread(target=lambda c=client, seeds=seeds: outcomes.extend(
        c.isolate_many([product_photo(seed) for seed in seeds])))
        for client, seeds in ((first, (1, 2, 3)), (second, (4, 5, 6)))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert first.fleet is not None
    spent, reserved, _ = first.fleet.money.today()
    assert spent <= Decimal("1.00") and reserved == 0, (spent, outcomes)
    assert emu.stats["creates"] == 2 and spent == Decimal("1.00")
    refused = [o for o in outcomes if isinstance(o, TeamBudgetExceeded)]
    assert len(refused) == 4 and all("($0.50 each)" in str(o) for o in refused), outcomes
    assert first.fleet.money.run_price() == Decimal("0.50")


@pytest.mark.parametrize("expiry_ms", [None, 3_600_000])
def test_a_foreign_value_at_the_pricing_key_never_blocks_a_create(client_for, emu, redis_server, tmp_path, expiry_ms):
    client = machine(client_for, emu, redis_server.url, tmp_path, "a", team_budget="1.00")
    assert client.fleet is not None
    client.fleet.store.redis.set(client.fleet.store.key("pricing"), "left here by hand", px=expiry_ms)
    started = time.monotonic()
    [result] = client.isolate_many([product_photo(1)], should_cancel=lambda: time.monotonic() - started > 10)
    assert not result.cached and emu.stats["creates"] == 1


def test_empty_objects_under_every_shared_key_are_survived(client_for, emu, redis_server, tmp_path, caplog):
    """`{}` under each key the fleet reads (result, journal, durations, spend, price, reservations, pricing):
    ignored or replaced, never a crash, and the budget still counts."""
    client = machine(client_for, emu, redis_server.url, tmp_path, "a", team_budget="1.00")
    first = client.isolate(product_photo(1))
    store = client.fleet.store if client.fleet else None
    assert store is not None
    day = time.strftime("%Y%m%d", time.gmtime())
    store.redis.set(store.key("result", first.cache_key), b"{}")
    store.redis.set(store.key("journal", first.cache_key), b"{}")
    store.redis.hset(store.key("durations"), f"{client.service_id}\trunflow/product-isolation\t2K", "{}")
    store.redis.hset(store.key("reservations"), "someone", "{}")
    for kind in ("price", "pricing"):
        store.redis.set(store.key(kind), "{}")
    store.redis.set(store.key("spent", day), "{}")
    other = machine(client_for, emu, redis_server.url, tmp_path, "b", team_budget="1.00")
    started = time.monotonic()
    outcomes = other.isolate_many([product_photo(1), product_photo(2)],
                                  should_cancel=lambda: time.monotonic() - started > 15)
    assert [type(o).__name__ for o in outcomes] == ["IsolationResult", "IsolationResult"], outcomes
    assert emu.stats["creates"] == 3 and other.fleet is not None
    assert other.fleet.money.today()[0] == Decimal("0.54"), "a foreign counter restarts from the runs paid now"
    assert other.fleet.money.run_price() == Decimal("0.27")
