"""Golden values for everything that decides whether a user pays again: cache keys, the create request
body and the Idempotency-Key.

The fixture `fixtures/money_golden.json` was recorded from the code of 0.1.0. A cache key that changes for
existing settings makes every cached result a miss, paid again at $0.27 per image; a changed key also
orphans journaled runs that were paid for but not yet collected (they are looked up by that key). A
changed create body, replayed under an Idempotency-Key the service has already seen, is answered 409
(or billed twice where keys are not honoured). So these tests compare byte for byte and are never
re-recorded to make a refactor pass: see docs/CHANGING.md.

Everything runs through the public client against real loopback servers: the emulator for the keys,
and a small recording service (`_RecordingService`) that keeps the exact bytes of each create.
"""

from __future__ import annotations

from typing import Any

import pytest
from golden_support import (
    COST_OF_A_BODY_CHANGE,
    COST_OF_A_KEY_CHANGE,
    COST_OF_AN_IDEMPOTENCY_CHANGE,
    GOLDEN,
    JOURNAL_ID,
    RecordingService,
    create_sent,
    golden_body,
    golden_photo,
)

from runflow_api import ImageURL, RunflowClient
from runflow_api.money.journal import idempotency_key

KEY_CASES: dict[str, dict[str, Any]] = {
    "resolution_1K": {"aspect_ratio": "1:1", "resolution": "1K"},
    "resolution_2K": {"aspect_ratio": "1:1", "resolution": "2K"},
    "resolution_4K": {"aspect_ratio": "1:1", "resolution": "4K"},
    "aspect_16_9": {"aspect_ratio": "16:9", "resolution": "2K"},
    "aspect_auto": {"aspect_ratio": "auto", "resolution": "2K"},
    "prompt": {"aspect_ratio": "1:1", "resolution": "2K", "prompt": "the left shoe"},
    "lossless": {"aspect_ratio": "1:1", "resolution": "2K", "lossless": True},
}

@pytest.mark.parametrize("case", sorted(KEY_CASES))
def test_cache_key_is_unchanged(case: str, golden_client: RunflowClient) -> None:
    result = golden_client.isolate(golden_photo(), **KEY_CASES[case])
    assert result.cache_key == GOLDEN["cache_keys"][case], f"{case}: {COST_OF_A_KEY_CHANGE}"


def test_cache_key_of_a_url_input_is_its_pixels(golden_client: RunflowClient) -> None:
    """A URL input is keyed by its decoded pixels: a lossless copy of the photo has the photo's key."""
    staged = golden_client.stage(golden_photo(), lossless=True)
    result = golden_client.isolate(ImageURL(staged.url), aspect_ratio="1:1", resolution="2K")
    assert result.cache_key == GOLDEN["cache_keys"]["url_input"], f"url_input: {COST_OF_A_KEY_CHANGE}"
    assert result.cache_key == GOLDEN["cache_keys"]["resolution_2K"]


def test_create_body_is_unchanged(recording_service: RecordingService, recording_client: RunflowClient) -> None:
    options = GOLDEN["create"]["options"]
    body, _, _ = create_sent(recording_service, recording_client, **options)
    assert body == golden_body("create"), COST_OF_A_BODY_CHANGE


def test_idempotency_key_is_unchanged(recording_service: RecordingService, recording_client: RunflowClient) -> None:
    derivation = GOLDEN["idempotency_key"]
    assert idempotency_key(JOURNAL_ID, derivation["cache_key"], derivation["generation"]) == derivation["key"], (
        COST_OF_AN_IDEMPOTENCY_CHANGE
    )
    _, sent, cache_key = create_sent(recording_service, recording_client, **GOLDEN["create"]["options"])
    assert (cache_key, sent) == (GOLDEN["create"]["cache_key"], GOLDEN["create"]["idempotency_key"]), (
        COST_OF_AN_IDEMPOTENCY_CHANGE
    )


def test_options_at_their_defaults_change_nothing(
    recording_service: RecordingService, recording_client: RunflowClient
) -> None:
    """Every option spelled out at its default sends the body and key of a call that names none: how a
    new option must behave, so saved workflows and scripts keep their cache and journal."""
    body, sent, cache_key = create_sent(recording_service, recording_client, aspect_ratio="1:1", resolution="2K",
                                         prompt=None, lossless=False, metadata=None, outputs="first")
    assert body == golden_body("default_create"), COST_OF_A_BODY_CHANGE
    assert cache_key == GOLDEN["default_create"]["cache_key"], COST_OF_A_KEY_CHANGE
    assert sent == GOLDEN["default_create"]["idempotency_key"], COST_OF_AN_IDEMPOTENCY_CHANGE
