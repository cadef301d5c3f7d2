"""Creating and reading runs: validation of every field, lifecycle, billing, idempotency, auth."""

from __future__ import annotations

import re
import threading
import time
from decimal import Decimal

import pytest
import requests
from emulator_support import TERMINAL, Client

from runflow_api.product_isolation import ASPECT_RATIOS, RESOLUTIONS

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")
RUNS = "/v1/models/runflow/product-isolation/runs"


def error_locs(answer: requests.Response) -> list[list[str]]:
    assert answer.status_code == 422, answer.text
    return [error["loc"] for error in answer.json()["errors"]]


@pytest.fixture
def image_url(client: Client) -> str:
    return client.stage()["url"]


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_every_aspect_ratio_is_accepted(client, image_url, ratio):
    answer = client.create(image_url, ratio, "1K")
    assert answer.status_code == 201 and answer.json()["input"]["aspect_ratio"] == ratio


@pytest.mark.parametrize("resolution", list(RESOLUTIONS))
def test_every_resolution_is_accepted(client, image_url, resolution):
    assert client.create(image_url, "1:1", resolution).status_code == 201


@pytest.mark.parametrize("ratio", ["7:3", "1:2", "16:10", "auto", "", 1, None])
def test_other_aspect_ratios_are_422(client, image_url, ratio):
    assert error_locs(client.create(image_url, ratio, "1K")) == [["body", "input", "aspect_ratio"]]


@pytest.mark.parametrize("resolution", ["8K", "1k", "1024", "", None, 2])
def test_other_resolutions_are_422(client, image_url, resolution):
    assert error_locs(client.create(image_url, "1:1", resolution)) == [["body", "input", "resolution"]]


@pytest.mark.parametrize(
    "url",
    [
        "",
        "not a url",
        "ftp://example.com/a.png",
        "data:image/png;base64,AAAA",
        "runflow://assets/abc",
        "http://example.com/photo.png",
        42,
        None,
    ],
)
def test_image_url_must_be_https_or_this_emulator(client, url):
    assert error_locs(client.create(url)) == [["body", "input", "image_url"]]


def test_missing_fields_unknown_keys_and_bad_prompt_each_get_an_entry(client):
    body = {"input": {"prompt": 5, "seed": 1, "mask": "x"}}
    locs = error_locs(client.request("POST", RUNS, json=body))
    assert sorted(map(tuple, locs)) == sorted(
        [
            ("body", "input", "image_url"),
            ("body", "input", "aspect_ratio"),
            ("body", "input", "resolution"),
            ("body", "input", "prompt"),
            ("body", "input", "seed"),
            ("body", "input", "mask"),
        ]
    )


def test_prompt_is_optional_recorded_and_bounded(client, image_url):
    body = {"input": {"image_url": image_url, "aspect_ratio": "1:1", "resolution": "1K", "prompt": None}}
    assert client.request("POST", RUNS, json=body).status_code == 201, "null means no prompt"
    body["input"]["prompt"] = "the shoe"
    answer = client.request("POST", RUNS, json=body)
    assert answer.status_code == 201 and answer.json()["input"]["prompt"] == "the shoe"
    body["input"]["prompt"] = "x" * 1001
    assert error_locs(client.request("POST", RUNS, json=body)) == [["body", "input", "prompt"]]


def test_envelope_fields_are_type_checked_and_echoed(client, image_url):
    ok = client.create(image_url, metadata={"source": "tests"}, client_ref="ref-1", callback_url=None)
    assert ok.status_code == 201
    assert ok.json()["metadata"] == {"source": "tests"} and ok.json()["client_ref"] == "ref-1"
    assert error_locs(client.request("POST", RUNS, json={"input": "x"})) == [["body", "input"]]
    bad = client.create(image_url, metadata=[1], client_ref=5)
    assert sorted(map(tuple, error_locs(bad))) == [("body", "client_ref"), ("body", "metadata")]


def test_unknown_model_is_404(client, image_url):
    answer = client.request("POST", "/v1/models/runflow/other-model/runs", json={"input": {"image_url": image_url}})
    assert answer.status_code == 404 and answer.json()["code"] == "MODEL_NOT_FOUND"


def test_unknown_run_is_404_run_not_found(client):
    answer = client.request("GET", "/v1/runs/0190aaaa-0000-7000-8000-000000000000")
    assert answer.status_code == 404 and answer.json()["code"] == "RUN_NOT_FOUND"


def test_lifecycle_goes_queued_dispatching_running_succeeded(make_emulator):
    emulator = make_emulator(latency=0.3)
    client = Client(emulator)
    created = client.create(client.stage()["url"]).json()
    assert UUID7.match(created["id"]) and created["status_code"] == "queued"
    assert created["cost"] is None and created["output"] is None and created["completed_at"] is None
    seen, last = [], None
    while last is None or last["status_code"] not in TERMINAL:
        last = client.request("GET", f"/v1/runs/{created['id']}").json()
        if not seen or seen[-1] != last["status_code"]:
            seen.append(last["status_code"])
        time.sleep(0.005)
    order = ["queued", "dispatching", "running", "succeeded"]
    assert seen[0] == "queued" and seen[-1] == "succeeded" and seen == sorted(seen, key=order.index)
    record = emulator.runs[created["id"]]
    start = record.created_at_monotonic
    assert [record.status_at(start + share * 0.3) for share in (0.0, 0.05, 0.15, 0.5, 0.99, 1.001, 5.0)] == [
        "queued",
        "queued",
        "dispatching",
        "running",
        "running",
        "succeeded",
        "succeeded",
    ]
    assert ISO.match(last["created_at"]) and ISO.match(last["started_at"]) and ISO.match(last["completed_at"])
    assert last["created_at"] < last["started_at"] < last["completed_at"]
    assert last["cost"] == "0.27" and last["duration_ms"] == 240
    assert [entry["message"] for entry in last["logs"]][-1] == "Run succeeded."
    assert len(last["logs"]) == 4 and all(ISO.match(entry["timestamp"]) for entry in last["logs"])
    for key in ("failure_code", "failure_message", "failure_stage_code", "error"):
        assert last[key] is None


def test_runs_expose_monotonic_completion_for_benchmarks(make_emulator):
    emulator = make_emulator(latency=0.2)
    client = Client(emulator)
    before = time.monotonic()
    run_id = client.create(client.stage()["url"]).json()["id"]
    record = emulator.runs[run_id]
    assert before <= record.created_at_monotonic <= time.monotonic()
    assert record.completed_at_monotonic == pytest.approx(record.created_at_monotonic + 0.2)
    assert record.status in ("queued", "dispatching", "running")
    time.sleep(max(0.0, record.completed_at_monotonic - time.monotonic()) + 0.01)
    assert record.status == "succeeded"
    assert client.request("GET", f"/v1/runs/{run_id}").json()["status_code"] == "succeeded"


def test_create_answers_queued_even_with_zero_latency(make_emulator):
    client = Client(make_emulator(latency=0.0))
    created = client.create(client.stage()["url"])
    assert created.json()["status_code"] == "queued"
    assert client.wait(created.json()["id"], limit=1)["status_code"] == "succeeded"


def test_foreign_image_url_fails_the_run_unbilled(emulator, client):
    created = client.create("https://example.com/shoe.jpg")
    assert created.status_code == 201
    run = client.wait(created.json()["id"])
    assert run["status_code"] == "failed" and run["failure_code"] == "INPUT_FETCH_FAILED"
    assert run["failure_stage_code"] == "input_fetch" and "example.com" in run["failure_message"]
    assert run["error"] == {"code": "INPUT_FETCH_FAILED", "message": run["failure_message"]}
    assert run["cost"] == "0" and run["output"] is None
    assert emulator.balance == Decimal("100.00")


def test_expired_asset_url_fails_the_run(emulator, client):
    emulator.faults.output_url_ttl = 0.0
    url = client.stage()["url"]
    emulator.faults.output_url_ttl = 600
    run = client.wait(client.create(url).json()["id"])
    assert run["failure_code"] == "INPUT_FETCH_FAILED" and "expired" in run["failure_message"]


def test_undecodable_input_fails_unless_cheap(make_emulator):
    real = Client(make_emulator(cheap=False))
    run = real.wait(real.create(real.stage(b"not an image at all", "image/png")["url"]).json()["id"])
    assert run["status_code"] == "failed" and run["failure_code"] == "INPUT_DECODE_FAILED"
    assert run["failure_stage_code"] == "preprocessing"
    cheap = Client(make_emulator(cheap=True))
    run = cheap.wait(cheap.create(cheap.stage(b"not an image at all", "image/png")["url"]).json()["id"])
    assert run["status_code"] == "succeeded", "cheap mode never looks at the pixels"


def test_an_output_url_can_be_the_next_input(make_emulator):
    client = Client(make_emulator(cheap=False))
    first = client.run_to_end("16:9", "1K")
    second = client.wait(client.create(first["output"]["image_urls"][0], "1:1", "1K").json()["id"])
    assert second["status_code"] == "succeeded"
    assert requests.get(second["output"]["image_urls"][0], timeout=10).status_code == 200


def test_success_is_billed_failure_is_not(emulator, client):
    run = client.run_to_end()
    assert emulator.balance == Decimal("99.73") and emulator.runs[run["id"]]["billing_settled"]
    emulator.faults.run_outcome = "failed"
    client.run_to_end()
    assert emulator.balance == Decimal("99.73")
    balance = client.request("GET", "/v1/billing/balance").json()
    assert balance == {"balance": "99.73", "low_balance_threshold": "5.00", "currency": "USD"}


def test_402_when_the_balance_cannot_cover_a_run(make_emulator):
    emulator = make_emulator(balance="0.54", latency=0.3)
    client = Client(emulator)
    url = client.stage()["url"]
    first, second = client.create(url), client.create(url)
    assert first.status_code == second.status_code == 201
    third = client.create(url)
    assert third.status_code == 402 and third.json()["code"] == "INSUFFICIENT_CREDIT"
    assert emulator.stats["creates"] == 2, "credit held by runs in flight is not spent twice"
    client.wait(first.json()["id"])
    client.wait(second.json()["id"])
    assert emulator.balance == 0
    assert client.create(url).status_code == 402


def test_held_credit_returns_when_a_run_fails(make_emulator):
    emulator = make_emulator(balance="0.27")
    client = Client(emulator)
    url = client.stage()["url"]
    emulator.faults.run_outcome = "errored"
    client.wait(client.create(url).json()["id"])
    emulator.faults.run_outcome = None
    assert client.create(url).status_code == 201


def test_concurrent_creates_never_overspend(make_emulator):
    emulator = make_emulator(balance="2.70", latency=0.2)
    client = Client(emulator)
    url = client.stage()["url"]
    statuses: list[int] = []
    lock = threading.Lock()

    def create() -> None:
        status = Client(emulator).create(url).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=create) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] * 10 + [402] * 14
    deadline = time.monotonic() + 5  # the runs end 0.2 s after their create; a loaded machine may lag
    while emulator.balance != 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.balance == 0 and emulator.stats["creates"] == 10


def test_same_idempotency_key_and_body_replays_the_first_answer(emulator, client, image_url):
    first = client.create(image_url, headers={"Idempotency-Key": "k-1"})
    again = client.create(image_url, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == first.status_code == 201
    assert again.content == first.content
    assert emulator.stats["creates"] == 1 and emulator.stats["idempotent_replays"] == 1
    other = client.create(image_url, "4:5", headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    fresh = client.create(image_url, headers={"Idempotency-Key": "k-2"})
    assert fresh.json()["id"] != first.json()["id"] and emulator.stats["creates"] == 2


def test_requests_without_a_key_are_never_deduplicated(emulator, client, image_url):
    assert client.create(image_url).json()["id"] != client.create(image_url).json()["id"]
    assert emulator.stats["creates"] == 2 and emulator.stats["idempotent_replays"] == 0


def test_idempotency_can_be_switched_off(emulator, client, image_url):
    emulator.faults.honour_idempotency = False
    first = client.create(image_url, headers={"Idempotency-Key": "k-1"})
    second = client.create(image_url, "4:5", headers={"Idempotency-Key": "k-1"})
    assert second.status_code == 201 and first.json()["id"] != second.json()["id"]
    assert emulator.stats["creates"] == 2


AUTHENTICATED = [
    ("POST", "/v1/asset-uploads"),
    ("POST", "/v1/asset-uploads/x/confirmations"),
    ("GET", "/v1/assets/x"),
    ("POST", RUNS),
    ("GET", "/v1/runs/x"),
    ("GET", "/v1/auth/me"),
    ("GET", "/v1/billing/balance"),
]


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED)
@pytest.mark.parametrize("header", [None, "Bearer rf_live_wrong", f"Basic {'x' * 8}", "Bearer "])
def test_every_authenticated_route_is_401_without_the_key(emulator, method, path, header):
    headers = {} if header is None else {"Authorization": header}
    answer = requests.request(method, emulator.base_url + path, headers=headers, json={}, timeout=5)
    assert answer.status_code == 401
    assert answer.json()["code"] == "UNAUTHORIZED" and "rf_live" not in answer.text
    assert emulator.stats["creates"] == emulator.stats["asset_uploads"] == 0


def test_me_health_and_balance(client, emulator):
    me = client.request("GET", "/v1/auth/me").json()
    assert me["user"]["id"]
    membership = me["memberships"][0]
    assert membership["org"]["name"] and membership["role"] == "owner"
    assert {"runs:create", "runs:read", "assets:create", "assets:read", "credit_balance:read"} <= set(
        membership["scopes"]
    )
    assert requests.get(emulator.base_url + "/v1/health", timeout=5).json() == {"ok": True}
    assert client.request("GET", "/v1/billing/balance").json()["balance"] == "100.00"


def test_run_records_read_like_dicts_too(emulator, client):
    run_id = client.create(client.stage()["url"]).json()["id"]
    record = emulator.runs[run_id]
    assert record["status"] == record.status and record["id"] == run_id
    assert record["created_at"] == record.created_at_monotonic
    assert record["completed_at"] == record["completed_at_monotonic"] == record.completed_at_monotonic
    with pytest.raises(KeyError):
        record["output_lock"]
