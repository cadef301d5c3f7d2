"""What a fleet machine does with values in Redis that this pack did not write, at the keys a catalogue reads
for every photo (review 4, items 2-4): a photo digest that does not parse, a stored result whose checksum
holds but whose image does not decode, a "being read" mark that never lapses. Each is ignored with one
warning and the catalogue finishes; nothing is paid twice and nothing broken is written. Real
redis-server, real emulator, real files, the real command line.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from support import EMULATOR_KEY, photo_folder

from runflow_api.catalogue.cli import main
from runflow_api.fleet import STORE_ENV, SharedStore
from runflow_api.money.cache import pack_entry, unpack_entry
from runflow_api.money.recent import shared_recent_results


def _input_key(store: SharedStore, path: Path) -> str:
    return store.key("input", hashlib.sha256(path.read_bytes()).hexdigest())


def _machine(client_for: Any, emu: Any, store: SharedStore, home: Path) -> Any:
    return client_for(emu, shared_store=store, cache_dir=home / "cache", data_dir=home / "data")


def _stream(client: Any, paths: list[Path], limit_s: float = 30.0) -> dict[int, Any]:
    """The catalogue through `isolate_stream`, cancelled after `limit_s` so a photo blocked for ever fails
    the test instead of hanging it."""
    started = time.monotonic()
    return dict(client.isolate_stream(paths, aspect_ratio="1:1", resolution="1K",
                                      should_cancel=lambda: time.monotonic() - started > limit_s))


def _ignored(caplog: pytest.LogCaptureFixture, key: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if "ignoring" in r.getMessage() and key in r.getMessage()]


# -- item 2: a photo digest that passes isdigit() but not int() ----------------------------------------------

@pytest.mark.parametrize("width", ["\u00b2", "9" * 5000, "0"],
                         ids=["superscript two", "5000 digits", "zero"])
def test_a_foreign_photo_digest_is_one_warning_and_the_photo_is_read_here(emu, client_for, redis_server, tmp_path,
                                                                         caplog, width):
    store = SharedStore(redis_server.url)
    paths = photo_folder(tmp_path / "photos", (70, 71, 72))
    mark = _input_key(store, paths[1])
    store.redis.set(mark, f"pixels {'ab' * 32} {width} 96")
    with caplog.at_level(logging.WARNING, logger="runflow_api"):
        outcomes = _stream(_machine(client_for, emu, store, tmp_path / "a"), paths)
    assert all(not isinstance(outcomes[i], Exception) for i in range(3)), outcomes
    assert emu.stats["creates"] == 3
    assert len(_ignored(caplog, mark)) == 1
    assert store.redis.get(mark).startswith(b"pixels "), "the photo's own digest replaces the foreign one"
    assert store.redis.get(mark) != f"pixels {'ab' * 32} {width} 96".encode()


# -- item 4: a "being read" mark that never lapses ----------------------------------------------------------

@pytest.mark.parametrize("expiry_ms", [None, 3_600_000], ids=["no expiry", "an hour, more than any mark of ours"])
def test_a_reading_mark_no_machine_of_ours_writes_is_taken_over(emu, client_for, redis_server, tmp_path, caplog,
                                                                expiry_ms):
    store = SharedStore(redis_server.url)
    paths = photo_folder(tmp_path / "photos", (73, 74))
    mark = _input_key(store, paths[0])
    store.redis.set(mark, "reading", px=expiry_ms)
    with caplog.at_level(logging.WARNING, logger="runflow_api"):
        outcomes = _stream(_machine(client_for, emu, store, tmp_path / "a"), paths, limit_s=20.0)
    assert not isinstance(outcomes[0], Exception), outcomes[0]
    assert emu.stats["creates"] == 2
    assert [m for m in _ignored(caplog, mark) if "taken over" in m], "said once, naming the key"
    assert store.redis.get(mark).startswith(b"pixels ")


# -- item 3: a stored result with a valid checksum and an image that does not decode ------------------------

def _damage_shared_result(store: SharedStore, cache_key: str, *, keep_flags: bool) -> str:
    """Replace the fleet's entry for `cache_key` by one any writer could make: the PNG cut in half (its
    header intact, its pixels gone), packed with a checksum that matches."""
    key = store.key("result", cache_key)
    entry = unpack_entry(store.redis.get(key))
    assert entry is not None
    meta = dict(entry.meta)
    if not keep_flags:
        meta.pop("qa", None)
    damaged = entry.image_bytes[: len(entry.image_bytes) // 2]
    store.redis.set(key, pack_entry([damaged], meta))
    return key


@pytest.mark.parametrize("keep_flags", [True, False], ids=["with stored flags", "without stored flags"])
def test_an_undecodable_shared_result_is_a_miss_never_an_output(emu, redis_server, tmp_path, monkeypatch, caplog,
                                                                keep_flags):
    """Through the command line, as a second machine of the fleet would run it: the damaged result is
    produced again (one more paid run, its stored entry replaced), never written as the output and never
    the end of the batch; the machine's next run skips a photo that is really done."""
    store = SharedStore(redis_server.url)
    paths = photo_folder(tmp_path / "photos", (75, 76))
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    monkeypatch.setenv(STORE_ENV, redis_server.url)

    def run_as(machine: str) -> int:
        monkeypatch.setenv("RUNFLOW_CACHE_DIR", str(tmp_path / machine / "cache"))
        monkeypatch.setenv("RUNFLOW_DATA_DIR", str(tmp_path / machine / "data"))
        shared_recent_results().clear()
        return main(["isolate", str(tmp_path / "photos"), "--out", str(tmp_path / machine / "out"),
                     "--aspect-ratio", "1:1", "--resolution", "1K", "-q"])

    assert run_as("a") == 0 and emu.stats["creates"] == 2
    cache_keys = [path.stem for path in (tmp_path / "a" / "cache").glob("??/*.rfc")]
    assert len(cache_keys) == 2
    damaged = [_damage_shared_result(store, key, keep_flags=keep_flags) for key in cache_keys]
    with caplog.at_level(logging.WARNING, logger="runflow_api"):
        assert run_as("b") == 0
    for path in paths:
        with Image.open(tmp_path / "b" / "out" / f"{path.stem}.png") as written:
            written.load()  # the output decodes: the broken bytes were never written
    assert emu.stats["creates"] == 4, "each damaged result was a miss, made again"
    assert all(len(_ignored(caplog, key)) == 1 for key in damaged), [r.getMessage() for r in caplog.records]
    for key in damaged:  # the fleet's entry is the good one again
        Image.open(io.BytesIO(unpack_entry(store.redis.get(key)).image_bytes)).load()
    assert run_as("b") == 0 and emu.stats["creates"] == 4

