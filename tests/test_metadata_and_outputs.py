"""Run metadata (on every create, validated before any spend, journaled and replayed as sent, never in the
cache key) and every output image (kept, cached whole, laid out for the nodes), against a real emulator."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest
from support import CALLBACK_SECRET, EMULATOR_KEY, product_photo

from runflow_api import InputRejected, NetworkError, RetryPolicy, __version__
from runflow_api.flow.run_metadata import node_metadata, parse_metadata_input
from runflow_api.money.cache import pack_entry, unpack_entry
from runflow_api.money.recent import shared_recent_results
from runflow_api.pictures.result_types import output_sources, select_outputs
from runflow_api.product_isolation import IsolationParams
from runflow_api.service.callbacks import CallbackSettings

PACK = {"pack": "runflow-product-isolation", "pack_version": __version__}


def only_run(emu):
    (run,) = emu.runs.values()
    return run


# -- metadata ---------------------------------------------------------------------------------------------


def test_every_create_carries_the_pack_its_version_and_the_users_metadata(emu, client_for):
    client_for(emu).isolate(product_photo(), resolution="1K", metadata={"sku": "A-123", "campaign": "spring"})
    assert only_run(emu).metadata == {**PACK, "sku": "A-123", "campaign": "spring"}


def test_without_metadata_a_create_still_names_the_pack(emu, client_for):
    client_for(emu).isolate(product_photo(), resolution="1K")
    assert only_run(emu).metadata == PACK


def test_metadata_per_input_index(emu, client_for):
    client_for(emu).isolate_many([product_photo(1), product_photo(2)], resolution="1K",
                                 metadata=lambda index: {"row": str(index)})
    assert sorted(run.metadata["row"] for run in emu.runs.values()) == ["0", "1"]


def test_metadata_is_not_part_of_the_cache_key(emu, client_for):
    client = client_for(emu)
    client.isolate(product_photo(), resolution="1K", metadata={"sku": "first"})
    again = client.isolate(product_photo(), resolution="1K", metadata={"sku": "second"})
    assert again.cached and emu.stats["creates"] == 1


@pytest.mark.parametrize(
    ("metadata", "needle"),
    [
        ({"n": 3}, "must be a string"),
        ({"bad key": "x"}, "is not allowed"),
        ({"": "x"}, "is not allowed"),
        ({"pack": "mine"}, "set by the pack"),
        ({f"k{n}": "v" for n in range(40)}, "at most 30"),
        ({"long": "x" * 600}, "at most 512"),
        ({"token": "rf_live_abcdefgh12345678"}, "credential"),
        ({"hook": "https://user:pw@example.com/x"}, "credential"),
        (["not", "a", "dict"], "JSON object"),
    ],
)
def test_bad_metadata_is_refused_before_anything_is_sent(emu, client_for, metadata, needle):
    with pytest.raises(InputRejected) as caught:
        client_for(emu).isolate_many([product_photo(1), product_photo(2)], resolution="1K", metadata=metadata)
    assert needle in str(caught.value)
    assert emu.stats["requests"] == 0


def test_the_key_itself_is_never_metadata(emu, client_for):
    with pytest.raises(InputRejected) as caught:
        client_for(emu).isolate(product_photo(), resolution="1K", metadata={"note": f"key {EMULATOR_KEY}"})
    assert EMULATOR_KEY not in str(caught.value) and emu.stats["requests"] == 0


def test_a_lost_create_is_replayed_with_its_journaled_body_whatever_the_new_call_says(emulator_factory, client_for):
    """Money rule: the journaled create (input, metadata, callback_url) is re-sent byte for byte with its
    Idempotency-Key. A restart with other metadata and callbacks turned off must not change the body:
    that would be a 409 and a step to a new generation, which may pay again."""
    emu = emulator_factory(callback_secret=CALLBACK_SECRET)
    emu.faults.routes = {"create"}
    emu.faults.drop_rate = 1.0
    emu.faults.drop_after = True  # the run exists at Runflow; its answer never arrives
    first_callbacks = CallbackSettings("https://comfy.example.com", CALLBACK_SECRET)
    with pytest.raises(NetworkError):
        client_for(emu, retry=RetryPolicy(attempts=1), callbacks=first_callbacks).isolate(
            product_photo(), resolution="1K", metadata={"attempt": "first"})
    assert emu.stats["creates"] == 1

    emu.faults.drop_rate = 0.0
    result = client_for(emu, callbacks=False).isolate(product_photo(), resolution="1K",
                                                      metadata={"attempt": "second", "extra": "x"})
    assert emu.stats["creates"] == 1 and emu.stats["idempotent_replays"] == 1, "replayed, not billed again"
    run = only_run(emu)
    assert result.run_id == run.id
    assert run.metadata == {**PACK, "attempt": "first"}
    assert run.callback_url == "https://comfy.example.com/runflow/callback"


def test_a_crash_between_journal_and_create_sends_the_journaled_body(emulator_factory, client_for):
    emu = emulator_factory()
    emu.faults.routes = {"create"}
    emu.faults.drop_rate = 1.0  # dropped before the emulator acts: no run exists, as if we died first
    with pytest.raises(NetworkError):
        client_for(emu, retry=RetryPolicy(attempts=1)).isolate(product_photo(), resolution="1K",
                                                               metadata={"attempt": "first"})
    assert emu.stats["creates"] == 0
    emu.faults.drop_rate = 0.0
    client_for(emu).isolate(product_photo(), resolution="1K", metadata={"attempt": "second"})
    assert emu.stats["creates"] == 1 and emu.stats["uploads"] == 1, "the journaled request, not a new one"
    assert only_run(emu).metadata == {**PACK, "attempt": "first"}


def test_a_journal_entry_from_before_metadata_replays_the_old_body(emu, client_for):
    """Entries written by earlier versions hold only the input: they replay the body those versions sent."""
    from runflow_api.service.runs import LEGACY_METADATA, create_run

    client = client_for(emu)
    job = client._prepare([product_photo()], IsolationParams("1:1", "1K"))[0]
    staged = client.stage(product_photo())
    entry = client.journal.record_intent(job.cache_key, client.service_id,
                                         params={"input": job.params.run_input(staged.url)})
    engine = client._engine
    old_version_create = create_run(engine.transport, engine.model_id, entry.params["input"],
                                    idempotency_key=entry.idempotency_key)  # sent, answer "lost"
    result = client.isolate(product_photo(), resolution="1K", aspect_ratio="1:1", metadata={"new": "x"})
    assert result.run_id == old_version_create.id
    assert emu.stats["creates"] == 1 and emu.stats["idempotent_replays"] == 1
    assert only_run(emu).metadata == LEGACY_METADATA


# A key without Runflow's shape (the check cannot rely on rf_live_), set where the pack reads it.
PLAIN_KEY = "CustomTeamKey0000secret9"


@pytest.fixture
def plain_key(monkeypatch):
    monkeypatch.setenv("RUNFLOW_API_KEY", PLAIN_KEY)
    return PLAIN_KEY


@pytest.mark.parametrize(
    "metadata",
    [
        {PLAIN_KEY: "1"},  # a key name
        {f"{PLAIN_KEY}!": "1"},  # a name that is not allowed anyway: still not quoted
        {"note": f"x{PLAIN_KEY[:8]}\u200b{PLAIN_KEY[8:]}"},  # a zero-width space inside
        {"note": "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in PLAIN_KEY)},  # full-width
        {"note": "sku_rf_live_abcdefgh12345678"},  # another key glued to a word
        {"note": "rf_test_abcdefgh12345678"},
        {"note": "rf_svc_abcdefgh12345678"},
        {"sku_rf_live_abcdefgh12345678": "1"},
    ],
)
def test_credentials_are_refused_in_names_and_values_and_never_quoted(emu, client_for, plain_key, metadata):
    client = client_for(emu, api_key=plain_key)
    for attempt in (lambda: client.isolate(product_photo(), resolution="1K", metadata=metadata),
                    lambda: parse_metadata_input(json.dumps(metadata, ensure_ascii=False))):
        with pytest.raises(InputRejected) as caught:
            attempt()
        message = str(caught.value)
        assert "credential" in message, message
        assert PLAIN_KEY[4:16] not in message and "abcdefgh1234" not in message, message
    assert emu.stats["requests"] == 0


def test_the_callback_secret_is_refused_in_metadata_while_callbacks_are_off(emu, client_for, monkeypatch):
    monkeypatch.setenv("RUNFLOW_CALLBACK_SECRET", CALLBACK_SECRET)
    client = client_for(emu, callbacks=False)
    with pytest.raises(InputRejected) as caught:
        client.isolate(product_photo(), resolution="1K", metadata={"note": CALLBACK_SECRET})
    assert "credential" in str(caught.value) and CALLBACK_SECRET not in str(caught.value)
    with pytest.raises(InputRejected):
        parse_metadata_input(json.dumps({"note": CALLBACK_SECRET}))
    assert emu.stats["requests"] == 0


def test_the_nodes_metadata_input(emu):
    assert parse_metadata_input("") == {} and parse_metadata_input("  \n") == {}
    assert parse_metadata_input('{"sku": "A-1"}') == {"sku": "A-1"}
    for text, needle in [("{sku: 1}", "not valid JSON"), ('{"sku": 1}', "must be a string"),
                         ('["a"]', "JSON object")]:
        with pytest.raises(InputRejected) as caught:
            parse_metadata_input(text)
        assert "input 'metadata'" in str(caught.value) and needle in str(caught.value)
    assert node_metadata('{"sku": "A-1"}', node_id="12", prompt_id="p-9") == {
        "source": "comfyui", "comfyui_node_id": "12", "comfyui_prompt_id": "p-9", "sku": "A-1"}
    assert node_metadata("", node_id=None, prompt_id=None) == {"source": "comfyui"}
    for reserved in ("source", "comfyui_node_id", "comfyui_prompt_id"):  # reserved even when the id is unknown
        with pytest.raises(InputRejected) as caught:
            node_metadata(f'{{"{reserved}": "mine"}}', node_id="12", prompt_id=None)
        assert f"'{reserved}'" in str(caught.value)


# -- every output image -----------------------------------------------------------------------------------


def test_all_outputs_are_kept_and_first_is_todays_behaviour(emu, client_for):
    emu.faults.output_count = 3
    client = client_for(emu)
    every = client.isolate(product_photo(), resolution="1K", outputs="all")
    assert len(every.images) == 3 and every.image is every.images[0]
    assert len({np.asarray(image).tobytes() for image in every.images}) == 3
    assert len(every.output_urls) == 3 and emu.stats["downloads"] == 3
    first = client.isolate(product_photo(), resolution="1K")  # default outputs="first", from the cache
    assert first.cached and len(first.images) == 1
    assert np.array_equal(np.asarray(first.image), np.asarray(every.image))


def test_a_cache_hit_returns_every_image_of_the_run(emu, client_for, tmp_path):
    emu.faults.output_count = 2
    client_for(emu).isolate(product_photo(), resolution="1K")  # "first" asked, yet the run is cached whole
    shared_recent_results().clear()  # as in a new process
    requests_before = emu.stats["requests"]
    again = client_for(emu).isolate(product_photo(), resolution="1K", outputs="all")
    assert again.cached and len(again.images) == 2 and emu.stats["requests"] == requests_before
    assert again.images[0].size == again.images[1].size


def test_an_unknown_outputs_mode_is_refused(emu, client_for):
    with pytest.raises(InputRejected):
        client_for(emu).isolate(product_photo(), resolution="1K", outputs="some")
    assert emu.stats["requests"] == 0


def test_single_image_entries_keep_the_original_layout_and_old_entries_read():
    image, meta = b"\x89PNG-one-image", {"run_id": "r1"}
    encoded_meta = json.dumps(meta).encode()
    old = struct.pack(">4sI32s", b"RFC1", len(encoded_meta), hashlib.sha256(image).digest()) + encoded_meta + image
    assert pack_entry([image], meta) == old, "one image: byte for byte what earlier versions wrote"
    entry = unpack_entry(old)
    assert entry is not None and entry.all_images == (image,) and entry.meta == meta


def test_several_images_round_trip_and_damage_is_a_miss():
    images = [b"first-image", b"second", b"third!"]
    blob = pack_entry(images, {"run_id": "r"})
    entry = unpack_entry(blob)
    assert entry is not None and list(entry.all_images) == images and entry.image_bytes == images[0]
    assert unpack_entry(blob[:-1]) is None
    assert unpack_entry(blob[:-3] + b"xyz") is None
    with pytest.raises(ValueError):
        pack_entry([], {})


def test_the_nodes_layout_of_every_output(emu, client_for):
    emu.faults.output_count = 3
    results = client_for(emu).isolate_many([product_photo(1), product_photo(2)], resolution="1K", outputs="all")
    laid_out = select_outputs(results, "all")
    assert len(laid_out) == 6 and [view.index for view in laid_out] == [0, 0, 0, 1, 1, 1]
    assert [view.output_number for view in laid_out] == [1, 2, 3, 1, 2, 3]
    assert laid_out[1].image is results[0].images[1]
    assert output_sources(results, "all")[4] == {"input": 1, "output": 2, "outputs": 3}
    assert [view.image for view in select_outputs(results, "first")] == [results[0].image, results[1].image]
    assert output_sources(results, "first") == [{"input": 0, "output": 1, "outputs": 3},
                                                {"input": 1, "output": 1, "outputs": 3}]
    trimmed = client_for(emu).isolate_many([product_photo(1)], resolution="1K")  # "first", from the cache
    assert len(trimmed[0].images) == 1
    assert output_sources(trimmed, "first") == [{"input": 0, "output": 1, "outputs": 3}], "the run's own count"
