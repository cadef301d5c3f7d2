"""`RunflowClient.stage_many`: a batch's uploads in parallel (bounded), in input order, cancellable.

Overlap is observed at the emulator, not timed: with every PUT held back by `Faults.slow`, an upload
slot stays without bytes for that long, so one upload after another never shows more than one such slot
at a time, and parallel uploads show several, never more than `max_concurrency`.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import UploadWatch, fetched, hold_puts, product_photo

from runflow_api.errors import InputRejected, RunflowCancelled


def test_a_batch_uploads_together_within_the_bound_and_comes_back_in_order(emu, client_for) -> None:
    client = client_for(emu, max_concurrency=4)
    photos = [product_photo(seed) for seed in range(10)]
    events: list[tuple[str, int, int]] = []
    hold_puts(emu, 0.3)
    with UploadWatch(emu) as watch:
        staged = client.stage_many(
            photos, lossless=True,
            on_progress=lambda event: events.append((event.kind, event.index, threading.get_ident())),
        )
    assert 2 <= watch.most <= 4, f"{watch.most} uploads in flight at once"
    for photo, asset in zip(photos, staged, strict=True):
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(fetched(asset.url)))), photo)
    assert sorted(index for _, index, _ in events) == list(range(10))
    assert {(kind, thread) for kind, _, thread in events} == {("done", threading.get_ident())}, (
        "progress is reported on the calling thread"
    )


def test_cancel_stops_the_batch_and_queued_uploads_never_start(emu, client_for) -> None:
    client = client_for(emu, max_concurrency=2)
    hold_puts(emu, 1.0)
    polled_from: set[int] = set()

    def should_cancel() -> bool:
        polled_from.add(threading.get_ident())
        return len(emu.assets) > 0

    with pytest.raises(RunflowCancelled, match="Cancelled after staging 0 of 8"):
        client.stage_many([product_photo(seed) for seed in range(8)], should_cancel=should_cancel)
    assert len(emu.assets) <= 2, "only the first two uploads ever asked for a slot"
    assert polled_from == {threading.get_ident()}, "should_cancel is only called on the calling thread"


def test_a_cancel_before_the_call_stages_nothing(emu, client_for) -> None:
    with pytest.raises(RunflowCancelled):
        client_for(emu).stage_many([product_photo(1)], should_cancel=lambda: True)
    assert emu.stats["asset_uploads"] == 0


def test_a_bad_item_fails_the_batch_naming_it(emu, client_for) -> None:
    with pytest.raises(InputRejected, match="image 1 "):
        client_for(emu).stage_many([product_photo(1), np.zeros((0, 8, 3), np.uint8)])


def test_files_are_staged_as_they_are(emu, client_for, tmp_path: Path) -> None:
    jpeg, rotated = tmp_path / "a.jpg", tmp_path / "b.jpg"
    Image.fromarray(product_photo(2)).save(jpeg, quality=88)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(product_photo(3)).save(rotated, exif=exif.tobytes())
    first, second = client_for(emu).stage_many([jpeg, str(rotated)])
    assert fetched(first.url) == jpeg.read_bytes()
    assert Image.open(io.BytesIO(fetched(second.url))).size == (96, 128), "rotated upright, so re-encoded"
