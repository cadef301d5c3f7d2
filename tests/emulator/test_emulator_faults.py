"""Every fault and response-variant switch of `Faults`, flipped on a live emulator."""

from __future__ import annotations

import time

import pytest
import requests
from emulator_support import Client

from runflow_api.emulator import Emulator, Faults

RUNS = "/v1/models/runflow/product-isolation/runs"


def run_body(url: str) -> dict:
    return {"input": {"image_url": url, "aspect_ratio": "1:1", "resolution": "1K"}}


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (500, "INTERNAL_ERROR"),
        (502, "BAD_GATEWAY"),
        (503, "MODEL_UNAVAILABLE"),
        (400, "BAD_REQUEST"),
        (403, "PERMISSION_DENIED"),
        (409, "CONFLICT"),
    ],
)
def test_injected_errors_carry_the_status_and_its_code(emulator, client, status, code):
    url = client.stage()["url"]
    emulator.faults.error_rate = 1.0
    emulator.faults.error_status = status
    answer = client.create(url)
    assert answer.status_code == status and answer.json()["code"] == code
    assert emulator.stats["creates"] == 0 and emulator.stats["injected_errors"] == 1


def test_routes_limit_where_faults_apply(emulator, client):
    url = client.stage()["url"]
    run_id = client.create(url).json()["id"]
    emulator.faults.error_rate = 1.0
    emulator.faults.routes = {"create"}
    assert client.create(url).status_code == 500
    assert client.request("GET", f"/v1/runs/{run_id}").status_code == 200
    emulator.faults.routes = {"poll", "download"}
    assert client.create(url).status_code == 201
    assert client.request("GET", f"/v1/runs/{run_id}").status_code == 500
    assert requests.get(url, timeout=5).status_code == 500, "storage routes can fail too"


def test_faults_never_touch_unknown_routes(emulator, client):
    emulator.faults.error_rate = 1.0
    emulator.faults.rate_limit_burst = 5
    assert client.request("GET", "/v1/not-a-route").status_code == 404
    assert client.request("DELETE", "/v1/health").status_code == 405
    assert emulator.faults.rate_limit_burst == 5 and emulator.stats["injected_errors"] == 0


def outcomes(emulator: Emulator, count: int) -> list[int]:
    return [requests.get(emulator.base_url + "/v1/health", timeout=5).status_code for _ in range(count)]


def test_seeded_fault_decisions_repeat_exactly(make_emulator):
    first = make_emulator(faults=Faults(error_rate=0.5, seed=42))
    second = make_emulator(faults=Faults(error_rate=0.5), seed=42)
    sequence = outcomes(first, 30)
    assert 200 in sequence and 500 in sequence
    assert outcomes(second, 30) == sequence, "Emulator(seed=...) seeds Faults without one"
    first.faults.seed = 42
    assert outcomes(first, 30) == sequence, "setting the seed restarts the sequence"


def test_a_whole_new_faults_object_can_be_swapped_in(make_emulator):
    emulator = make_emulator(seed=42)
    emulator.faults = Faults(error_rate=0.5)
    assert emulator.faults.seed == 42, "seeded like the constructor's faults"
    assert outcomes(emulator, 30) == outcomes(make_emulator(faults=Faults(error_rate=0.5, seed=42)), 30)


def test_drop_before_the_action_creates_nothing(emulator, client):
    url = client.stage()["url"]
    emulator.faults.drop_rate = 1.0
    emulator.faults.routes = {"create"}
    with pytest.raises(requests.ConnectionError):
        client.create(url, headers={"Idempotency-Key": "k"})
    assert emulator.stats["creates"] == 0 and emulator.stats["dropped"] == 1 and not emulator.runs


def test_drop_after_the_action_creates_the_run_then_a_retry_replays_it(emulator, client):
    url = client.stage()["url"]
    emulator.faults.drop_rate = 1.0
    emulator.faults.drop_after = True
    emulator.faults.routes = {"create"}
    with pytest.raises(requests.ConnectionError):
        client.create(url, headers={"Idempotency-Key": "k-drop"})
    assert emulator.stats["creates"] == 1 and len(emulator.runs) == 1
    with pytest.raises(requests.ConnectionError):
        client.create(url, headers={"Idempotency-Key": "k-drop"})
    assert emulator.stats["idempotent_replays"] == 1
    emulator.faults.drop_rate = 0.0
    answer = client.create(url, headers={"Idempotency-Key": "k-drop"})
    assert answer.status_code == 201 and answer.json()["id"] in emulator.runs
    assert emulator.stats["creates"] == 1 and emulator.stats["idempotent_replays"] == 2


def test_drop_after_an_upload_keeps_the_bytes(emulator, client):
    data = b"\x89PNG fake"
    slot = client.request(
        "POST", "/v1/asset-uploads", json={"filename": "a.png", "mime_type": "image/png", "size_bytes": len(data)}
    ).json()
    emulator.faults.drop_rate = 1.0
    emulator.faults.drop_after = True
    emulator.faults.routes = {"put"}
    with pytest.raises(requests.ConnectionError):
        client.put_bytes(slot["upload_url"], data, "image/png")
    assert emulator.stats["uploads"] == 1 and emulator.assets[slot["asset_id"]]["uploaded"]


def test_rate_limit_burst_answers_429_then_recovers(emulator, client):
    emulator.faults.rate_limit_burst = 2
    emulator.faults.retry_after = 1.5
    answers = [client.request("GET", "/v1/auth/me") for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].json()["code"] == "RATE_LIMITED" and answers[0].headers["Retry-After"] == "1.5"
    assert emulator.faults.rate_limit_burst == 0 and emulator.stats["rate_limited"] == 2
    emulator.faults.rate_limit_burst = 1
    emulator.faults.retry_after = None
    limited = client.request("GET", "/v1/auth/me")
    assert limited.status_code == 429 and "Retry-After" not in limited.headers


def test_slow_delays_only_the_selected_routes(emulator, client):
    emulator.faults.slow = 0.2
    emulator.faults.routes = {"me"}
    started = time.monotonic()
    client.request("GET", "/v1/auth/me")
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    client.request("GET", "/v1/billing/balance")
    assert time.monotonic() - started < 0.15


@pytest.mark.parametrize("outcome", ["succeeded", "partial_succeeded", "failed", "canceled", "cancelled", "errored"])
def test_run_outcome_forces_the_terminal_status(emulator, client, outcome):
    emulator.faults.run_outcome = outcome
    run = client.run_to_end()
    assert run["status_code"] == outcome
    if outcome in ("succeeded", "partial_succeeded"):
        assert run["cost"] == "0.27" and run["output"]["image_urls"] and run["failure_code"] is None
    else:
        assert run["cost"] == "0" and run["output"] is None
        assert run["failure_code"] and run["failure_message"] and run["failure_stage_code"]
        assert run["error"] == {"code": run["failure_code"], "message": run["failure_message"]}


def test_fail_rate_fails_a_seeded_share_of_runs(make_emulator):
    emulator = make_emulator(faults=Faults(fail_rate=0.5, seed=3), latency=0.0)
    client = Client(emulator)
    url = client.stage()["url"]
    ids = [client.create(url).json()["id"] for _ in range(20)]
    statuses = [client.wait(run_id)["status_code"] for run_id in ids]
    assert set(statuses) == {"failed", "succeeded"}
    failed = client.wait(ids[statuses.index("failed")])
    assert failed["failure_code"] == "MODEL_ERROR" and failed["failure_stage_code"] == "inference"
    emulator.faults.fail_rate = 1.0
    assert client.wait(client.create(url).json()["id"])["status_code"] == "failed"


SHAPES = {
    "outputs": lambda output: [item["url"] for item in output["outputs"]],
    "image_urls": lambda output: output["image_urls"],
    "image_str": lambda output: [output["image"]],
    "image_list": lambda output: output["image"],
    "image_obj": lambda output: [output["image"]["url"]],
    "url": lambda output: [output["url"]],
    "output_url": lambda output: [output["output_url"]],
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_output_shape_carries_a_working_url(emulator, client, shape):
    emulator.faults.output_shape = shape
    output = client.run_to_end()["output"]
    assert len(output) == 1, f"only the {shape} shape is present: {output}"
    (url,) = SHAPES[shape](output)
    download = requests.get(url, timeout=5)
    assert download.status_code == 200 and download.headers["Content-Type"] == "image/png"


def test_empty_output_shape_has_no_urls(emulator, client):
    emulator.faults.output_shape = "empty"
    run = client.run_to_end()
    assert run["status_code"] == "succeeded" and run["output"] == {"image_urls": []}


def test_nested_errors_wrap_the_envelope(emulator, client):
    emulator.faults.nested_errors = True
    unauthorized = requests.get(emulator.base_url + "/v1/auth/me", timeout=5).json()
    assert set(unauthorized) == {"error"} and unauthorized["error"]["code"] == "UNAUTHORIZED"
    invalid = client.request("POST", RUNS, json={"input": {}}).json()
    assert invalid["error"]["code"] == "VALIDATION_ERROR" and len(invalid["error"]["errors"]) == 3
    emulator.faults.nested_errors = False
    flat = requests.get(emulator.base_url + "/v1/auth/me", timeout=5).json()
    assert set(flat) == {"code", "message", "errors"} and flat["errors"] is None


@pytest.mark.parametrize("status", [200, 201, 202])
def test_create_status_is_switchable(emulator, client, status):
    url = client.stage()["url"]
    emulator.faults.create_status = status
    answer = client.create(url)
    assert answer.status_code == status and answer.json()["status_code"] == "queued"


def test_output_url_ttl_expires_outputs_and_a_reread_resigns(emulator, client):
    created = client.create(client.stage()["url"]).json()
    emulator.faults.output_url_ttl = 0.0  # the asset URL above was signed for 600 s and stays usable
    run = client.wait(created["id"])
    expired = requests.get(run["output"]["image_urls"][0], timeout=5)
    assert expired.status_code == 403 and expired.json()["code"] == "URL_EXPIRED"
    emulator.faults.output_url_ttl = 600
    fresh = client.request("GET", f"/v1/runs/{run['id']}").json()["output"]["image_urls"][0]
    assert requests.get(fresh, timeout=5).status_code == 200
    assert emulator.stats["downloads"] == 1


def test_balance_shape_cents(emulator, client):
    client.run_to_end()
    emulator.faults.balance_shape = "cents"
    assert client.request("GET", "/v1/billing/balance").json() == {"balance_cents": 9973, "currency": "USD"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("error_rate", 1.5),
        ("error_status", 200),
        ("routes", {"creat"}),
        ("drop_rate", -0.1),
        ("drop_after", 1),
        ("rate_limit_burst", -1),
        ("retry_after", -1),
        ("slow", "1"),
        ("run_outcome", "done"),
        ("fail_rate", 2),
        ("output_shape", "imageurls"),
        ("nested_errors", "yes"),
        ("create_status", 204),
        ("upload_url_ttl", -5),
        ("output_url_ttl", None),
        ("honour_idempotency", None),
        ("balance_shape", "dollars"),
        ("seed", 1.5),
    ],
)
def test_faults_refuse_values_that_would_test_nothing(field, value):
    faults = Faults()
    with pytest.raises(ValueError, match=field):
        setattr(faults, field, value)
    with pytest.raises(ValueError, match=field):
        Faults(**{field: value})
