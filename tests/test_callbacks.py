"""Callbacks on the client side: a real emulator delivering to a real receiver (the CLI's
`CallbackReceiver`) over loopback, waking the client's waits. Counted with the emulator's statistics:
with callbacks on a run is read about once, not polled; with every callback lost the result still
comes by polling; forged, oversized and replayed posts are answered as the contract says."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
from support import CALLBACK_SECRET, product_photo

from runflow_api import PollPolicy, RunflowCancelled
from runflow_api.errors import InputRejected
from runflow_api.service.callback_server import CallbackReceiver, parse_listen
from runflow_api.service.callbacks import CallbackSettings, host_settings, sign, signature_valid
from runflow_api.service.wakeups import Wakeups, shared_wakeups

LONG_FALLBACK = PollPolicy(callback_interval=30.0)  # a run that is not woken would take 30 s: tests fail fast
SHORT_FALLBACK = PollPolicy(callback_interval=0.3)


@pytest.fixture
def receiver():
    with CallbackReceiver("127.0.0.1", 0, CALLBACK_SECRET) as started:
        yield started


def settings_for(receiver: CallbackReceiver) -> CallbackSettings:
    return CallbackSettings(f"http://127.0.0.1:{receiver.port}", CALLBACK_SECRET)


def test_with_callbacks_on_each_run_is_read_about_once(emulator_factory, client_for, receiver):
    emu = emulator_factory(latency=0.5, callback_secret=CALLBACK_SECRET)
    client = client_for(emu, callbacks=settings_for(receiver), poll=LONG_FALLBACK)
    started = time.monotonic()
    outcomes = client.isolate_many([product_photo(seed) for seed in range(4)], resolution="1K")
    assert all(not isinstance(outcome, Exception) for outcome in outcomes)
    assert time.monotonic() - started < 15, "woken by the callbacks, not by the 30 s fallback poll"
    assert emu.stats["creates"] == 4 and emu.stats["callbacks_delivered"] == 4
    assert max(run.polls for run in emu.runs.values()) <= 2, "at most 2 polls per run"
    run = next(iter(emu.runs.values()))
    assert run.callback_url == f"http://127.0.0.1:{receiver.port}/runflow/callback"


def test_with_every_callback_dropped_results_still_arrive_by_polling(emulator_factory, client_for, receiver):
    emu = emulator_factory(latency=0.3, callback_secret=CALLBACK_SECRET)
    emu.faults.callback_drop_rate = 1.0
    client = client_for(emu, callbacks=settings_for(receiver), poll=SHORT_FALLBACK)
    outcomes = client.isolate_many([product_photo(seed) for seed in range(3)], resolution="1K")
    assert all(not isinstance(outcome, Exception) for outcome in outcomes)
    assert emu.stats["callbacks_dropped"] == 3 and emu.stats["callbacks"] == 0


def test_mis_signed_callbacks_are_refused_and_polling_collects(emulator_factory, client_for, receiver):
    emu = emulator_factory(latency=0.2, callback_secret=CALLBACK_SECRET)
    emu.faults.callback_bad_signature = True
    client = client_for(emu, callbacks=settings_for(receiver), poll=SHORT_FALLBACK)
    result = client.isolate(product_photo(), resolution="1K")
    assert result.run_id in emu.runs
    assert emu.stats["callbacks_delivered"] == 0 and emu.stats["callbacks_failed"] >= 1  # the 401s


def test_late_and_duplicated_callbacks_cost_nothing(emulator_factory, client_for, receiver):
    emu = emulator_factory(latency=0.2, callback_secret=CALLBACK_SECRET)
    emu.faults.callback_duplicates = 2
    emu.faults.callback_delay = 0.3
    client = client_for(emu, callbacks=settings_for(receiver), poll=LONG_FALLBACK)
    client.isolate_many([product_photo(seed) for seed in range(2)], resolution="1K")
    deadline = time.monotonic() + 10
    while emu.stats["callbacks_delivered"] < 6 and time.monotonic() < deadline:  # counted once answered
        time.sleep(0.02)
    time.sleep(0.2)  # room for a seventh, which must not come
    assert emu.stats["callbacks_delivered"] == 6, "every repeat is answered 2xx"
    assert emu.stats["creates"] == 2 and emu.stats["polls"] <= 4


def test_a_replayed_callback_costs_at_most_one_read_per_second(emulator_factory, client_for, receiver):
    """Anyone who saw one genuine callback can replay it: the wake-ups are merged, at most one read a second,
    and the run's real end is still noticed at once."""
    emu = emulator_factory(latency=4.0, callback_secret=CALLBACK_SECRET)
    client = client_for(emu, callbacks=settings_for(receiver), poll=LONG_FALLBACK)
    outcomes: list = []
    worker = threading.Thread(target=lambda: outcomes.extend(client.isolate_many([product_photo()], resolution="1K")))
    worker.start()
    deadline = time.monotonic() + 10
    while not emu.runs and time.monotonic() < deadline:
        time.sleep(0.01)
    (run_id,) = emu.runs
    replay = json.dumps({"event": "run.completed", "run_id": run_id}).encode()
    signed = {"Runflow-Signature": sign(CALLBACK_SECRET, replay)}
    replays = 0
    with requests.Session() as session:
        while worker.is_alive() and time.monotonic() < deadline:
            session.post(f"http://127.0.0.1:{receiver.port}/runflow/callback", data=replay, headers=signed, timeout=5)
            replays += 1
            time.sleep(0.02)
    worker.join(timeout=20)
    assert [type(outcome).__name__ for outcome in outcomes] == ["IsolationResult"]
    assert replays >= 50, replays
    assert emu.runs[run_id].polls <= 4 + 2, f"{emu.runs[run_id].polls} reads for {replays} replays of a 4 s run"


def test_the_callback_only_wakes_the_run_is_read_from_the_api(emulator_factory, client_for, receiver):
    """A forged body naming the run (correctly signed, as a leaked secret would allow) wakes the waiter,
    which reads the run, sees it still running and waits on: no URL from the body is ever used."""
    emu = emulator_factory(latency=1.5, callback_secret=CALLBACK_SECRET)
    client = client_for(emu, callbacks=settings_for(receiver), poll=LONG_FALLBACK)
    created = threading.Event()
    run_ids: list[str] = []

    def on_progress(event):
        if event.kind == "created":
            run_ids.append(event.run_id)
            created.set()

    results: list = []
    worker = threading.Thread(target=lambda: results.append(
        client.isolate(product_photo(), resolution="1K", on_progress=on_progress)))
    worker.start()
    assert created.wait(10)
    body = json.dumps({"event": "run.completed", "run_id": run_ids[0], "status": "succeeded",
                       "output": {"image_urls": ["https://evil.example/x.png"]}}).encode()
    forged = requests.post(f"http://127.0.0.1:{receiver.port}/runflow/callback", data=body,
                           headers={"Runflow-Signature": sign(CALLBACK_SECRET, body)}, timeout=5)
    assert forged.status_code == 200
    worker.join(20)
    assert results and results[0].output_url.startswith(emu.base_url)
    assert emu.stats["downloads"] == 1


def test_cancel_during_a_callback_wait_is_prompt(emulator_factory, client_for, receiver):
    emu = emulator_factory(latency=5.0, callback_secret=CALLBACK_SECRET)
    client = client_for(emu, callbacks=settings_for(receiver), poll=LONG_FALLBACK)
    created = threading.Event()
    with pytest.raises(RunflowCancelled):
        client.isolate(product_photo(), resolution="1K", should_cancel=created.is_set,
                       on_progress=lambda event: created.set() if event.kind == "created" else None)
    assert emu.stats["creates"] == 1


# -- the receiver, over a real socket ---------------------------------------------------------------------


def post(receiver: CallbackReceiver, body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(f"http://127.0.0.1:{receiver.port}/runflow/callback", data=body, headers=headers or {},
                         timeout=5)


def test_the_receiver_answers_each_kind_of_post(receiver):
    body = json.dumps({"event": "run.completed", "run_id": "run-nobody-waits-for"}).encode()
    assert post(receiver, body).status_code == 401
    assert post(receiver, body, {"Runflow-Signature": "0" * 64}).status_code == 401
    assert post(receiver, body, {"Runflow-Signature": sign("whsec_another_secret_000", body)}).status_code == 401
    good = {"Runflow-Signature": sign(CALLBACK_SECRET, body)}
    assert post(receiver, body, good).status_code == 200, "unknown run: still 2xx"
    assert post(receiver, body, good).status_code == 200, "a replay: still 2xx"
    big = b"x" * (1024 * 1024 + 1)
    assert post(receiver, big, {"Runflow-Signature": sign(CALLBACK_SECRET, big)}).status_code == 413
    not_a_callback = b"[1, 2]"
    signed = {"Runflow-Signature": sign(CALLBACK_SECRET, not_a_callback)}
    assert post(receiver, not_a_callback, signed).status_code == 400
    assert requests.get(f"http://127.0.0.1:{receiver.port}/runflow/callback", timeout=5).status_code == 405


def test_a_valid_post_wakes_the_waiter_of_its_run(receiver):
    body = json.dumps({"run_id": "run-42"}).encode()
    with shared_wakeups().register("run-42") as wakeup:
        answer = post(receiver, body, {"Runflow-Signature": sign(CALLBACK_SECRET, body)})
        assert answer.json() == {"ok": True, "waiting": True}
        assert wakeup.wait(5.0)


# -- the pieces -------------------------------------------------------------------------------------------


def test_signature_check_is_strict_and_accepts_either_secret_during_rotation():
    body = b'{"run_id":"r"}'
    signature = sign(CALLBACK_SECRET, body)
    assert len(signature) == 64 and signature == signature.lower()
    assert signature_valid((CALLBACK_SECRET,), body, signature)
    assert signature_valid(("whsec_the_old_one_00000", CALLBACK_SECRET), body, signature)
    assert not signature_valid((CALLBACK_SECRET,), body + b" ", signature)
    assert not signature_valid((CALLBACK_SECRET,), body, signature.upper())
    assert not signature_valid((CALLBACK_SECRET,), body, None)
    assert not signature_valid((), body, signature)


def test_a_callback_before_its_waiter_registers_is_not_lost():
    wakeups = Wakeups()
    wakeups.notify("early")
    with wakeups.register("early") as wakeup:
        assert wakeup.wait(1.0)
    with wakeups.register("other") as other:
        assert other.wait(0.05) is False


def test_configured_callbacks_need_a_receiver_in_this_process(monkeypatch):
    monkeypatch.setenv("RUNFLOW_PUBLIC_URL", "https://comfy.example.com/")
    monkeypatch.setenv("RUNFLOW_CALLBACK_SECRET", CALLBACK_SECRET)
    if not shared_wakeups().receiving:
        assert host_settings() is None
    with shared_wakeups().receiver():
        settings = host_settings()
    assert settings is not None and settings.callback_url == "https://comfy.example.com/runflow/callback"
    assert CALLBACK_SECRET not in repr(settings)


@pytest.mark.parametrize("text", ["8189", "host:", ":80", "h:99999", "h:x"])
def test_listen_addresses_are_checked(text):
    with pytest.raises(InputRejected):
        parse_listen(text)
    assert parse_listen("0.0.0.0:8189") == ("0.0.0.0", 8189) and parse_listen("[::1]:80") == ("::1", 80)


def test_a_run_resumed_from_a_create_without_callback_url_is_polled_not_waited_for(
    emulator_factory, client_for, receiver
):
    """Its create (journaled before callbacks were turned on) asked for no callback: waiting for one
    would cost the whole fallback interval."""
    emu = emulator_factory(latency=1.0, callback_secret=CALLBACK_SECRET)
    created = threading.Event()
    with pytest.raises(RunflowCancelled):
        client_for(emu, callbacks=False).isolate(
            product_photo(), resolution="1K", should_cancel=created.is_set,
            on_progress=lambda event: created.set() if event.kind == "created" else None)
    started = time.monotonic()
    result = client_for(emu, callbacks=settings_for(receiver), poll=LONG_FALLBACK).isolate(
        product_photo(), resolution="1K")
    assert result.resumed and emu.stats["creates"] == 1
    assert time.monotonic() - started < 10, "polled as learned, not left to the 30 s fallback"


def test_a_fleet_machine_collecting_another_s_run_polls_instead_of_waiting_for_its_callback(
    emulator_factory, client_for, receiver, redis_server, tmp_path
):
    """The dead machine's journaled create asked Runflow to call *it* back: the machine collecting the run
    will never hear that callback, so it polls as learned."""
    emu = emulator_factory(latency=1.0, callback_secret=CALLBACK_SECRET)
    created = threading.Event()
    elsewhere = CallbackSettings("http://127.0.0.1:9", CALLBACK_SECRET)
    with pytest.raises(RunflowCancelled):
        client_for(emu, callbacks=elsewhere, shared_store=redis_server.url, cache_dir=tmp_path / "a" / "cache",
                   data_dir=tmp_path / "a" / "data").isolate(
            product_photo(), resolution="1K", should_cancel=created.is_set,
            on_progress=lambda event: created.set() if event.kind == "created" else None)
    started = time.monotonic()
    result = client_for(emu, callbacks=settings_for(receiver), poll=LONG_FALLBACK, shared_store=redis_server.url,
                        cache_dir=tmp_path / "b" / "cache", data_dir=tmp_path / "b" / "data").isolate(
        product_photo(), resolution="1K")
    assert result.resumed and emu.stats["creates"] == 1
    assert time.monotonic() - started < 10, "polled as learned, not left to the 30 s fallback"
