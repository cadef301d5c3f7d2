"""The emulator's callback deliveries and multi-image runs, pinned over real HTTP with a thin client and
a real receiving server (support.CallbackSink). Signatures are checked with hmac here, independently of
the pack's own `callbacks.sign`, so a bug there cannot hide behind the emulator using it too."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from emulator_support import Client
from support import CALLBACK_SECRET, CallbackSink

from runflow_api.emulator import Faults


def expected_signature(body: bytes, secret: str = CALLBACK_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_finished_run_is_posted_once_signed_with_the_seeds_payload(make_emulator):
    emulator = make_emulator(callback_secret=CALLBACK_SECRET, latency=0.2)
    client = Client(emulator)
    with CallbackSink() as sink:
        asset = client.stage()
        created = client.create(asset["url"], callback_url=sink.url, metadata={"sku": "A-1"}).json()
        (delivery,) = sink.wait_for(1)
        time.sleep(0.3)  # nothing else arrives
        assert len(sink.deliveries) == 1
    payload = delivery.json()
    assert set(payload) == {"event", "run_id", "status", "output", "duration_ms", "created_at", "completed_at",
                            "metadata"}
    assert payload["event"] == "run.completed" and payload["status"] == "succeeded"
    assert payload["run_id"] == created["id"] and payload["metadata"] == {"sku": "A-1"}
    assert payload["completed_at"].endswith("+00:00") and payload["created_at"].endswith("+00:00")
    assert len(payload["output"]["image_urls"]) == 1
    assert delivery.headers["Runflow-Signature"] == expected_signature(delivery.body)
    assert len(delivery.headers["Runflow-Request-Id"]) >= 16
    assert delivery.at >= emulator.runs[created["id"]].completed_at_monotonic, "sent when the run ends, not before"
    assert emulator.stats["callbacks"] == emulator.stats["callbacks_delivered"] == 1


@pytest.mark.parametrize(("outcome", "event"), [("failed", "run.failed"), ("cancelled", "run.cancelled"),
                                                ("partial_succeeded", "run.partial_succeeded")])
def test_the_event_names_the_ending(make_emulator, outcome, event):
    emulator = make_emulator(callback_secret=CALLBACK_SECRET, faults=Faults(run_outcome=outcome))
    client = Client(emulator)
    with CallbackSink() as sink:
        client.create(client.stage()["url"], callback_url=sink.url)
        (delivery,) = sink.wait_for(1)
    assert delivery.json()["event"] == event and delivery.json()["status"] == outcome


def test_5xx_is_retried_after_1_then_2_seconds_and_then_given_up(make_emulator):
    emulator = make_emulator(callback_secret=CALLBACK_SECRET)
    client = Client(emulator)
    with CallbackSink(statuses=[503, 500, 502]) as sink:
        client.create(client.stage()["url"], callback_url=sink.url)
        first, second, third = sink.wait_for(3)
        time.sleep(2.5)
        assert len(sink.deliveries) == 3, "three attempts in all"
    assert 0.9 <= second.at - first.at <= 2.0 and 1.9 <= third.at - second.at <= 3.5
    assert first.headers["Runflow-Request-Id"] == third.headers["Runflow-Request-Id"], "one delivery, retried"
    assert emulator.stats["callbacks"] == emulator.stats["callbacks_failed"] == 3


def test_a_4xx_answer_is_not_retried_and_a_network_error_is(make_emulator):
    emulator = make_emulator(callback_secret=CALLBACK_SECRET, callback_retry_delays=(0.1, 0.1))
    client = Client(emulator)
    with CallbackSink(statuses=[401]) as sink:
        client.create(client.stage()["url"], callback_url=sink.url)
        sink.wait_for(1)
        time.sleep(0.5)
        assert len(sink.deliveries) == 1
    with CallbackSink() as closed:
        url = closed.url
    client.create(client.stage()["url"], callback_url=url)  # nothing listens there any more
    deadline = time.monotonic() + 10
    while emulator.stats["callbacks_failed"] < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.stats["callbacks_failed"] == 4  # the 401, then 3 refused connections
    assert emulator.stats["callbacks_delivered"] == 0


def test_fault_switches_late_duplicated_dropped_and_mis_signed(make_emulator):
    emulator = make_emulator(callback_secret=CALLBACK_SECRET, latency=0.1)
    client = Client(emulator)
    with CallbackSink() as sink:
        emulator.faults.callback_duplicates = 2
        run_id = client.create(client.stage()["url"], callback_url=sink.url).json()["id"]
        copies = sink.wait_for(3)
        assert {d.json()["run_id"] for d in copies} == {run_id}

        emulator.faults.callback_duplicates = 0
        emulator.faults.callback_delay = 0.8
        run_id = client.create(client.stage()["url"], callback_url=sink.url).json()["id"]
        late = sink.wait_for(4)[3]
        assert late.at - emulator.runs[run_id].completed_at_monotonic >= 0.75

        emulator.faults.callback_delay = 0.0
        emulator.faults.callback_bad_signature = True
        client.create(client.stage()["url"], callback_url=sink.url)
        forged = sink.wait_for(5)[4]
        assert forged.headers["Runflow-Signature"] != expected_signature(forged.body)
        assert len(forged.headers["Runflow-Signature"]) == 64

        emulator.faults.callback_bad_signature = False
        emulator.faults.callback_drop_rate = 1.0
        client.wait(client.create(client.stage()["url"], callback_url=sink.url).json()["id"])
        time.sleep(0.3)
        assert len(sink.deliveries) == 5 and emulator.stats["callbacks_dropped"] == 1


def test_without_a_secret_callback_urls_are_accepted_and_never_called(emulator, client):
    with CallbackSink() as sink:
        created = client.create(client.stage()["url"], callback_url=sink.url)
        assert created.status_code == 201
        client.wait(created.json()["id"])
        time.sleep(0.2)
    assert sink.deliveries == [] and emulator.stats["callbacks"] == 0


def test_metadata_values_must_be_strings(client):
    answer = client.create(client.stage()["url"], metadata={"n": 3})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["loc"] == ["body", "metadata", "n"]


@pytest.mark.parametrize("count", [2, 3])
def test_a_run_can_return_several_distinct_images(make_emulator, count):
    emulator = make_emulator(faults=Faults(output_count=count))
    client = Client(emulator)
    run = client.run_to_end()
    urls = run["output"]["image_urls"]
    assert len(urls) == count
    bodies = [client.request("GET", url.removeprefix(client.base)).content for url in urls]
    assert len(set(bodies)) == count, "each returned image differs"
    assert all(body.startswith(b"\x89PNG") for body in bodies)


def test_single_url_shapes_carry_the_first_of_several(make_emulator):
    emulator = make_emulator(faults=Faults(output_count=2, output_shape="url"))
    run = Client(emulator).run_to_end()
    assert set(run["output"]) == {"url"}
    emulator.faults.output_shape = "outputs"
    assert len(Client(emulator).run_to_end()["output"]["outputs"]) == 2


def test_an_output_number_the_run_does_not_have_is_refused(make_emulator):
    emulator = make_emulator(faults=Faults(output_count=2))
    client = Client(emulator)
    url = client.run_to_end()["output"]["image_urls"][1]
    assert client.request("GET", url.removeprefix(client.base)).status_code == 200
    # The signature covers the file id, so a made-up third output is refused before it is looked up.
    assert client.request("GET", url.replace(".2?", ".3?").removeprefix(client.base)).status_code == 403


def test_the_command_line_takes_a_callback_secret():
    from runflow_api.emulator.__main__ import parse_args

    assert parse_args(["--callback-secret", CALLBACK_SECRET]).callback_secret == CALLBACK_SECRET
    assert parse_args([]).callback_secret is None
