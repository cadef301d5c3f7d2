"""Machines of a fleet do not each decode the whole catalogue, nor every result of it.

The first machine to read a photo leaves its pixel digest in Redis (`fleet.shared_inputs`); the others key
the photo from that digest, set aside a photo another machine is reading, and decode it only if they must
produce it (refusing it, before paying, if the file changed). A stored result carries its QA flags, so a
catalogue machine takes another machine's result without judging it again. Real redis-server, real emulator,
real files.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from support import photo_folder, product_photo

from runflow_api.errors import InputRejected
from runflow_api.fleet import SharedStore
from runflow_api.fleet.shared_inputs import KnownPixels, SharedInputs
from runflow_api.money.recent import shared_recent_results
from runflow_api.pictures import originals, qa
from runflow_api.pictures.images import pixel_digest, to_array
from runflow_api.pictures.result_images import decode_image, open_image
from runflow_api.product_isolation import IsolationParams


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _machine(client_for: Any, emu: Any, store: SharedStore, home: Path, **options: Any) -> Any:
    """Another machine: its own cache and data folders, the fleet's store."""
    return client_for(emu, shared_store=store, cache_dir=home / "cache", data_dir=home / "data", **options)


def _stream(client: Any, paths: list[Path], events: list[Any] | None = None) -> dict[int, Any]:
    return dict(client.isolate_stream(paths, aspect_ratio="1:1", resolution="1K",
                                      on_progress=None if events is None else events.append))


def _count_reads(monkeypatch: Any) -> list[str]:
    """Each file decoded by `originals.read` (still read for real): which photos a machine decoded."""
    reads: list[str] = []
    real = originals.read

    def counting(image: Any, **kwargs: Any) -> Any:
        reads.append(Path(image).name)
        return real(image, **kwargs)

    monkeypatch.setattr(originals, "read", counting)
    return reads


def test_a_second_machine_keys_the_catalogue_from_the_first_one_s_reads(
    emu, client_for, redis_server, tmp_path, monkeypatch
):
    store = SharedStore(redis_server.url)
    paths = photo_folder(tmp_path / "photos", (60, 61, 62))
    reads = _count_reads(monkeypatch)
    first = _stream(_machine(client_for, emu, store, tmp_path / "a"), paths)
    assert sorted(reads) == sorted(path.name for path in paths), "the first machine reads each photo once"
    for path in paths:  # what the first machine left: the pixel digest and size it decoded
        known = SharedInputs(store).look(_file_digest(path))
        array = to_array(path, name=path.name)
        assert known == KnownPixels(pixel_digest(array), array.shape[1], array.shape[0])
    reads.clear()
    shared_recent_results().clear()  # another machine has no results in memory
    second = _stream(_machine(client_for, emu, store, tmp_path / "b"), paths)
    assert reads == [], "the second machine decoded photos the fleet had read"
    assert emu.stats["creates"] == 3, "nothing was paid twice"
    assert [second[i].cache_key for i in range(3)] == [first[i].cache_key for i in range(3)]
    assert all(second[i].cached and second[i].shared_hit for i in range(3))
    assert [second[i].flags for i in range(3)] == [first[i].flags for i in range(3)]


def test_a_photo_another_machine_is_reading_is_set_aside_then_taken(emu, client_for, redis_server, tmp_path):
    store = SharedStore(redis_server.url)
    paths = photo_folder(tmp_path / "photos", (63, 64))
    mark = store.key("input", _file_digest(paths[0]))
    store.redis.set(mark, "reading", px=1500)  # another machine started reading it, then died
    events: list[Any] = []
    outcomes = _stream(_machine(client_for, emu, store, tmp_path / "a"), paths, events)
    assert ("waiting", 0, "machine") in {(e.kind, e.index, e.detail) for e in events}
    waited = next(e for e in events if e.kind == "waiting")
    finished_other = next(e for e in events if e.kind == "done" and e.index == 1)
    assert events.index(waited) < events.index(finished_other), "the next photo did not wait for the mark"
    assert not outcomes[0].cached and emu.stats["creates"] == 2, "once the mark lapsed, this machine produced it"
    assert SharedInputs(store).look(_file_digest(paths[0])) is not None


def test_a_file_changed_after_the_fleet_read_it_is_refused_before_paying(emu, client_for, redis_server, tmp_path):
    store = SharedStore(redis_server.url, claim_ttl_s=20.0)
    paths = photo_folder(tmp_path / "photos", (65,))
    array = to_array(paths[0], name="p")
    known = KnownPixels(pixel_digest(array), array.shape[1], array.shape[0])
    SharedInputs(store).remember(_file_digest(paths[0]), known)
    client = _machine(client_for, emu, store, tmp_path / "a", max_concurrency=1)
    key = client._job(paths[0], IsolationParams("1:1", "1K"), 0, share_reads=True).cache_key
    store.redis.set(store.key("claim", key), "another-machine", px=20_000)
    outcome: dict[int, Any] = {}
    worker = threading.Thread(target=lambda: outcome.update(_stream(client, paths)))
    worker.start()
    time.sleep(0.5)  # set aside behind the other machine's claim, keyed from the fleet's read
    Image.fromarray(np.asarray(product_photo(66))).save(paths[0])  # rewritten meanwhile
    store.redis.delete(store.key("claim", key))  # the other machine gave up without a result
    worker.join(timeout=30)
    assert isinstance(outcome[0], InputRejected) and "changed while the batch ran" in str(outcome[0])
    assert emu.stats["creates"] == 0


def test_set_aside_inputs_are_tried_only_when_worth_it(redis_server, emu, client_for, tmp_path):
    store = SharedStore(redis_server.url)
    fleet = _machine(client_for, emu, store, tmp_path / "a").fleet
    store.redis.set(store.key("claim", "held"), "x", px=20_000)
    store.redis.set(store.key("claim", "stored"), "x", px=20_000)
    store.redis.set(fleet.results.key_of("stored"), b"entry", px=20_000)
    assert fleet.worth_retrying(["held", "stored", "given-up"]) == {"stored", "given-up"}
    assert fleet.worth_retrying([]) == set()


def test_a_stored_result_opens_without_decoding_and_keeps_its_flags(emu, client_for, tmp_path):
    client = client_for(emu)
    paths = photo_folder(tmp_path / "photos", (67,))
    produced = client.isolate(paths[0], aspect_ratio="1:1", resolution="1K")
    entry = client._engine.cache.get(produced.cache_key)
    assert entry is not None
    matte = [flag for flag in produced.flags if flag in qa.MATTE_FLAGS]  # `enlarged` is judged anew, never stored
    assert entry.meta.get("qa") == qa.to_store(matte), "the flags judged at production stay with it"
    image, deferred = open_image(entry.image_bytes, max_pixels=10**8, lazy=True)
    decoded = decode_image(entry.image_bytes, max_pixels=10**8)
    assert deferred and np.array_equal(np.asarray(image), np.asarray(decoded)), "same pixels once read"
    palette = Image.new("P", (8, 8))
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    converted, deferred = open_image(buffer.getvalue(), max_pixels=10**8, lazy=True)
    assert not deferred and converted.mode == "RGB", "what Pillow reads otherwise is decoded (and normalised) now"
    assert qa.stored({"qa": {"judge": "qa-0:old", "flags": ["full"]}}) is None, "another judge's flags are judged again"
    assert qa.stored({"qa": {"judge": qa.JUDGE, "flags": ["nonsense"]}}) is None
