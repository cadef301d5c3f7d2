"""Every row of the contract's error table, retries that succeed and ones that give up, and the inputs
refused before any request."""

from __future__ import annotations

import time

import numpy as np
import pytest
from support import EMULATOR_KEY, FAST_RETRY, product_photo

from runflow_api import (
    AuthenticationFailed,
    Conflict,
    InputRejected,
    InsufficientCredit,
    MissingApiKey,
    NetworkError,
    NotFound,
    PermissionDenied,
    RateLimited,
    RetryPolicy,
    RunflowClient,
    ServiceUnavailable,
    ValidationFailed,
)
from runflow_api.service.http import Transport
from runflow_api.service.runs import create_run, get_run

SECRET = "rf_live_THISISSECRET0042"


def test_wrong_key_is_401_with_masked_key_and_advice(emu, client_for):
    client = client_for(emu, api_key=SECRET)
    with pytest.raises(AuthenticationFailed) as caught:
        client.isolate(product_photo(), resolution="1K")
    text = str(caught.value)
    assert "401" in text and "RUNFLOW_API_KEY" in text
    assert SECRET not in text and "THISISSECRET" not in text and SECRET not in repr(client)
    assert "…0042" in text
    assert emu.stats["requests"] == 1, "a 401 must not be retried"


def test_insufficient_credit_is_402_and_not_retried(emulator_factory, client_for):
    emu = emulator_factory(balance="0.10")
    with pytest.raises(InsufficientCredit) as caught:
        client_for(emu).isolate(product_photo(), resolution="1K")
    assert "top it up" in str(caught.value)
    assert emu.stats["creates"] == 0


def test_balance_runs_out_mid_way(emulator_factory, client_for):
    emu = emulator_factory(balance="0.54")
    client = client_for(emu)
    client.isolate(product_photo(1), resolution="1K")
    client.isolate(product_photo(2), resolution="1K")
    with pytest.raises(InsufficientCredit):
        client.isolate(product_photo(3), resolution="1K")
    assert client.balance().amount == 0


@pytest.mark.parametrize(("status", "error"), [(400, "BadRequest"), (403, "PermissionDenied"), (404, "NotFound"),
                                               (409, "Conflict"), (422, "ValidationFailed")])
def test_other_4xx_are_typed_and_never_retried(emu, client_for, status, error):
    import runflow_api

    emu.faults.error_rate = 1.0
    emu.faults.error_status = status
    emu.faults.routes = {"create"}
    client = client_for(emu)
    with pytest.raises(getattr(runflow_api, error)):
        client.isolate(product_photo(), resolution="1K")
    assert emu.stats["creates"] == 0
    assert emu.stats["requests"] == 4, "upload slot, PUT, confirm, then exactly one create attempt"


def test_validation_errors_are_listed_per_field(emu):
    transport = Transport(emu.base_url, EMULATOR_KEY, retry=FAST_RETRY)
    bad_input = {"image_url": "https://example.com/x.jpg", "aspect_ratio": "7:3", "resolution": "8K"}
    with pytest.raises(ValidationFailed) as caught:
        create_run(transport, "runflow/product-isolation", bad_input, idempotency_key="k-validation")
    locs = [loc for loc, _ in caught.value.field_errors]
    assert any("aspect_ratio" in loc for loc in locs) and any("resolution" in loc for loc in locs)
    assert "aspect_ratio" in str(caught.value) and "resolution" in str(caught.value)


def test_same_idempotency_key_with_other_body_is_409(emu, client_for):
    client = client_for(emu)
    url = client.stage(product_photo()).url
    transport = Transport(emu.base_url, EMULATOR_KEY, retry=FAST_RETRY)
    body = {"image_url": url, "aspect_ratio": "1:1", "resolution": "1K"}
    first = create_run(transport, "runflow/product-isolation", body, idempotency_key="k-409")
    again = create_run(transport, "runflow/product-isolation", body, idempotency_key="k-409")
    assert first.id == again.id and emu.stats["idempotent_replays"] == 1
    with pytest.raises(Conflict):
        create_run(transport, "runflow/product-isolation", {**body, "resolution": "2K"}, idempotency_key="k-409")
    assert emu.stats["creates"] == 1


def test_unknown_run_is_404(emu):
    transport = Transport(emu.base_url, EMULATOR_KEY, retry=FAST_RETRY)
    with pytest.raises(NotFound):
        get_run(transport, "0190aaaa-0000-7000-8000-000000000000")


def test_nested_error_envelope_is_read(emu, client_for):
    emu.faults.nested_errors = True
    with pytest.raises(AuthenticationFailed) as caught:
        client_for(emu, api_key=SECRET).isolate(product_photo(), resolution="1K")
    assert "UNAUTHORIZED" in str(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_are_retried_until_success(emu, client_for, status):
    emu.faults.error_status = status
    emu.faults.error_rate = 0.5
    emu.faults.seed = 3
    client = client_for(emu, retry=RetryPolicy(attempts=12, base_delay=0.01, max_delay=0.02, jitter=0.01))
    assert client.isolate(product_photo(), resolution="1K").run_id
    assert emu.stats["creates"] == 1


def test_503_gives_up_after_bounded_attempts_with_model_unavailable(emu, client_for):
    emu.faults.error_status = 503
    emu.faults.error_rate = 1.0
    emu.faults.routes = {"create"}
    with pytest.raises(ServiceUnavailable) as caught:
        client_for(emu).isolate(product_photo(), resolution="1K")
    assert "MODEL_UNAVAILABLE" in str(caught.value) and "5 attempts" in str(caught.value)
    assert emu.stats["creates"] == 0


def test_429_burst_with_retry_after_is_honoured(emu, client_for):
    emu.faults.rate_limit_burst = 2
    emu.faults.retry_after = 0.3
    started = time.monotonic()
    assert client_for(emu).isolate(product_photo(), resolution="1K").run_id
    assert time.monotonic() - started >= 0.6, "two Retry-After waits of 0.3 s"


def test_429_without_retry_after_backs_off_and_can_give_up(emu, client_for):
    emu.faults.rate_limit_burst = 50
    emu.faults.retry_after = None
    with pytest.raises(RateLimited) as caught:
        client_for(emu).isolate(product_photo(), resolution="1K")
    assert "lower the concurrency" in str(caught.value)
    assert emu.stats["requests"] == FAST_RETRY.attempts


def test_backoff_doubles_with_jitter_and_respects_ceiling():
    import random

    policy = RetryPolicy()
    rng = random.Random(1)
    delays = [policy.delay(attempt, None, rng) for attempt in range(1, 8)]
    for attempt, delay in enumerate(delays, start=1):
        base = min(2 ** (attempt - 1), 32)
        assert base <= delay <= base + 1
    assert policy.delay(1, 7.5, rng) == 7.5


def test_connection_refused_is_a_network_error_naming_the_cause(client_for, emulator_factory):
    emu = emulator_factory()
    base = emu.base_url
    emu.stop()
    with RunflowClient(EMULATOR_KEY, base, retry=FAST_RETRY) as client, pytest.raises(NetworkError) as caught:
        client.isolate(product_photo(), resolution="1K")
    assert "refused" in str(caught.value) and "5 attempts" in str(caught.value)


def test_dropped_connections_are_retried(emu, client_for):
    emu.faults.drop_rate = 0.3
    emu.faults.seed = 7
    client = client_for(emu, retry=RetryPolicy(attempts=10, base_delay=0.01, max_delay=0.02, jitter=0.01))
    assert client.isolate(product_photo(), resolution="1K").image.size == (1024, 1024)


def test_missing_key_says_where_to_set_it(emu, monkeypatch):
    with pytest.raises(MissingApiKey) as caught:
        RunflowClient(base_url=emu.base_url)
    text = str(caught.value)
    assert "RUNFLOW_API_KEY" in text and "Settings > Runflow" in text and "emulator" in text


@pytest.mark.parametrize(
    "key", ["rf_live_has space0000", "rf_live_quote'0000000", "short_key", "rf-live-dashes-123456"]
)
def test_malformed_key_is_refused_before_sending(emu, key):
    with pytest.raises(InputRejected) as caught:
        RunflowClient(api_key=key, base_url=emu.base_url)
    assert "malformed" in str(caught.value)
    assert key not in str(caught.value)
    assert emu.stats["requests"] == 0


def _bad_inputs() -> list[tuple[object, dict, str]]:
    good = product_photo()
    return [
        (np.zeros((0, 10, 3), np.uint8), {}, "no pixels"),
        (good.astype(np.int64), {}, "int64"),
        (np.zeros((10, 10, 2), np.uint8), {}, "2 channels"),
        (np.zeros((10, 10, 5), np.uint8), {}, "5 channels"),
        (np.full((10, 10, 3), np.nan, np.float32), {}, "NaN"),
        (good, {"aspect_ratio": "7:5"}, "aspect_ratio"),
        (good, {"resolution": "8K"}, "resolution"),
        (good, {"prompt": "x" * 5000}, "prompt"),
        ("http://example.com/photo.jpg", {}, "https"),
        ("https://example.com/photo.jpg", {"aspect_ratio": "auto"}, "this machine"),
    ]


@pytest.mark.parametrize(("image", "params", "needle"), _bad_inputs())
def test_bad_input_is_refused_before_any_request(emu, client_for, image, params, needle):
    client = client_for(emu)
    with pytest.raises(InputRejected) as caught:
        client.isolate(image, **{"resolution": "1K", **params})
    assert needle in str(caught.value)
    assert emu.stats["requests"] == 0


def test_empty_batch_and_one_bad_item_refuse_the_whole_batch(emu, client_for):
    client = client_for(emu)
    with pytest.raises(InputRejected, match="empty"):
        client.isolate_many([])
    with pytest.raises(InputRejected, match="image 2"):
        client.isolate_many([product_photo(1), product_photo(2), np.zeros((4, 4, 2), np.uint8)])
    assert emu.stats["requests"] == 0


def test_non_https_upload_url_is_refused_outside_loopback():
    transport = Transport("https://api.runflow.io", EMULATOR_KEY)
    with pytest.raises(InputRejected, match="non-https"):
        transport.put_bytes("http://storage.example.com/upload?sig=abc", b"x", "image/jpeg")


def test_oversize_upload_is_refused_before_any_request(emu, client_for, monkeypatch):
    from runflow_api.service import assets

    monkeypatch.setattr(assets, "MAX_UPLOAD_BYTES", 1000)
    with pytest.raises(InputRejected, match="50 MiB"):
        client_for(emu).isolate(product_photo(size=(200, 200)), resolution="1K")
    assert emu.stats["requests"] == 0


def test_plain_http_base_is_refused_off_loopback():
    with pytest.raises(InputRejected, match="unencrypted"):
        RunflowClient(EMULATOR_KEY, "http://api.runflow.io")


def test_permission_denied_email_not_verified_advice():
    import requests

    from runflow_api.service.http_failures import error_from_response

    response = requests.Response()
    response.status_code = 403
    response._content = b'{"code": "EMAIL_NOT_VERIFIED", "message": "Verify your email", "errors": null}'
    error = error_from_response(response, what="Starting the run", api_key=SECRET)
    assert isinstance(error, PermissionDenied) and "Verify the e-mail" in str(error)
