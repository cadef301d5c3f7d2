"""A fleet shares the work: an input another process or machine holds does not keep a worker waiting.

The batch sets such an input aside, takes the next unclaimed ones, and comes back to it at the end: it
takes the holder's stored result, or produces it itself when the holder let go without one. Each test
holds claims the way another process (a file lock) or another machine (a Redis key) really holds them,
and uses one run slot, so a worker stuck waiting would stall the whole batch.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support import EMULATOR_KEY, product_photo

from runflow_api import RunflowCancelled
from runflow_api.fleet import SharedStore
from runflow_api.money.claims import LocalClaims
from runflow_api.pictures.result_types import ProgressEvent
from runflow_api.product_isolation import IsolationParams

PHOTOS = [product_photo(seed) for seed in (50, 51, 52, 53)]
BATCH = [PHOTOS[0], PHOTOS[1], PHOTOS[2], PHOTOS[0], PHOTOS[3]]  # index 3 repeats index 0


def _key(client: Any, image: Any) -> str:
    return str(client._job(image, IsolationParams("1:1", "2K"), 0).cache_key)


class _Batch:
    """isolate_many on a thread, recording its progress events."""

    def __init__(self, client: Any, images: list[Any], **options: Any) -> None:
        self.events: list[ProgressEvent] = []
        self.outcome: Any = None
        self.stop = threading.Event()

        def run() -> None:
            try:
                self.outcome = client.isolate_many(images, on_progress=self.events.append,
                                                   should_cancel=self.stop.is_set, **options)
            except Exception as exc:  # noqa: BLE001 - handed to the test thread
                self.outcome = exc

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def indices(self, kind: str) -> set[int]:
        return {event.index for event in list(self.events) if event.kind == kind}

    def wait_until(self, check: Any, limit: float = 20.0) -> None:
        deadline = time.monotonic() + limit
        while not check() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert check(), [(event.kind, event.index) for event in self.events]

    def result(self) -> Any:
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        return self.outcome


def _check_in_order(client: Any, outcomes: list[Any]) -> None:
    assert [outcome.index for outcome in outcomes] == list(range(len(BATCH)))
    assert [outcome.cache_key for outcome in outcomes] == [_key(client, image) for image in BATCH]
    assert outcomes[3].run_id == outcomes[0].run_id, "the repeated photo rode on its first occurrence's run"


def test_inputs_another_process_holds_do_not_hold_the_only_slot(emu, client_for, tmp_path):
    client = client_for(emu, max_concurrency=1)
    claims = LocalClaims(tmp_path / "data" / "claims")  # what a second ComfyUI on this machine would hold
    with contextlib.ExitStack() as held:
        for image in PHOTOS[:2]:
            held.enter_context(claims.hold(_key(client, image), should_cancel=lambda: False))
        batch = _Batch(client, BATCH)
        batch.wait_until(lambda: {2, 4} <= batch.indices("done"))
        assert emu.stats["creates"] == 2, "the free inputs ran while the other process held the first two"
        assert {(e.index, e.detail) for e in batch.events if e.kind == "waiting"} == {(0, "process"), (1, "process")}
    # The holder let go without storing anything: the batch comes back and produces them itself.
    outcomes = batch.result()
    _check_in_order(client, outcomes)
    assert emu.stats["creates"] == 4 and [o.cached for o in outcomes] == [False, False, False, False, False]


def test_a_set_aside_input_takes_the_holder_s_result_and_pays_nothing(emulator_factory, client_for):
    emu = emulator_factory(latency=1.5)
    holder, client = client_for(emu), client_for(emu, max_concurrency=1)
    first = _Batch(holder, [PHOTOS[0]])
    first.wait_until(lambda: emu.stats["creates"] == 1)
    outcomes = _Batch(client, [PHOTOS[0], PHOTOS[1]]).result()
    produced = first.result()[0]
    assert emu.stats["creates"] == 2, "the photo the other process was producing was not bought again"
    assert outcomes[0].cached and outcomes[0].waited_for == "process" and outcomes[0].run_id == produced.run_id
    assert not outcomes[1].cached and outcomes[1].index == 1


def test_inputs_another_machine_holds_are_set_aside(emu, client_for, redis_server):
    store = SharedStore(redis_server.url, claim_ttl_s=20.0)
    client = client_for(emu, max_concurrency=1, shared_store=store)
    claims = [store.key("claim", _key(client, image)) for image in PHOTOS[:2]]
    for claim in claims:  # another machine's live claims, as its FleetClaims writes them
        store.redis.set(claim, "another-machine", px=20_000)
    batch = _Batch(client, BATCH)
    batch.wait_until(lambda: {2, 4} <= batch.indices("done"))
    assert emu.stats["creates"] == 2
    assert {(e.index, e.detail) for e in batch.events if e.kind == "waiting"} == {(0, "machine"), (1, "machine")}
    store.redis.delete(*claims)  # that machine gave up without a result
    outcomes = batch.result()
    _check_in_order(client, outcomes)
    assert emu.stats["creates"] == 4


def test_cancel_returns_while_every_input_is_set_aside(emu, client_for, tmp_path):
    client = client_for(emu, max_concurrency=1)
    claims = LocalClaims(tmp_path / "data" / "claims")
    with contextlib.ExitStack() as held:
        for image in PHOTOS:
            held.enter_context(claims.hold(_key(client, image), should_cancel=lambda: False))
        batch = _Batch(client, PHOTOS)
        batch.wait_until(lambda: batch.indices("waiting") == {0, 1, 2, 3})
        cancelled_at = time.monotonic()
        batch.stop.set()
        outcome = batch.result()
        assert time.monotonic() - cancelled_at < 1.0
    assert isinstance(outcome, RunflowCancelled) and emu.stats["creates"] == 0


_SPLITTER = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {tests!r})
    from support import FAST_POLL, FAST_RETRY, product_photo
    from runflow_api import RunflowClient
    from runflow_api.fleet import SharedStore

    base_url, key, home, start, redis_url = sys.argv[1:6]
    store = SharedStore(redis_url) if redis_url else None
    client = RunflowClient(key, base_url, cache_dir=home + "/cache", data_dir=home + "/data", retry=FAST_RETRY,
                           poll=FAST_POLL, memory_cache=False, max_concurrency=2, shared_store=store)
    photos = [product_photo(seed) for seed in range(60, 72)]
    time.sleep(max(0.0, float(start) - time.time()))
    for outcome in client.isolate_many(photos):
        print(json.dumps({{"run_id": outcome.run_id, "cached": outcome.cached}}), flush=True)
    """
)


@pytest.mark.parametrize("shared_store", [False, True], ids=["two processes, local claims", "two machines, redis"])
def test_two_processes_split_a_batch(emulator_factory, redis_server, tmp_path: Path, shared_store):
    emu = emulator_factory(latency=1.0)
    script = tmp_path / "splitter.py"
    script.write_text(_SPLITTER.format(tests=str(Path(__file__).parent)))
    start = str(time.time() + 4.0)  # both are importing numpy and Pillow until then
    workers = []
    for name in ("m1", "m2"):
        home = tmp_path / (name if shared_store else "one-machine")
        argv = [emu.base_url, EMULATOR_KEY, str(home), start, redis_server.url if shared_store else ""]
        workers.append(subprocess.Popen([sys.executable, str(script), *argv], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE))
    outputs = [worker.communicate(timeout=120) for worker in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err.decode()
    lines = [[json.loads(line) for line in out.splitlines()] for out, _ in outputs]
    assert [a["run_id"] for a in lines[0]] == [b["run_id"] for b in lines[1]], "the same 12 results, in order"
    assert emu.stats["creates"] == 12, "nothing paid twice"
    produced = [sum(not line["cached"] for line in found) for found in lines]
    assert sum(produced) == 12 and min(produced) >= 3, f"each one produced a share of the batch: {produced}"


@pytest.mark.parametrize("shared_store", [False, True], ids=["local claims", "redis"])
def test_two_cli_shells_split_one_folder(emulator_factory, redis_server, tmp_path, shared_store):
    from PIL import Image

    emu = emulator_factory(latency=1.0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(8):
        Image.fromarray(product_photo(90 + seed)).save(photos / f"p{seed}.png")
    at = time.time() + 3.0
    shells = []
    for name in ("s1", "s2"):
        home = tmp_path / (name if shared_store else "one-machine")
        env = {**os.environ, "RUNFLOW_API_KEY": EMULATOR_KEY, "RUNFLOW_API_BASE": emu.base_url,
               "RUNFLOW_CACHE_DIR": str(home / "cache"), "RUNFLOW_DATA_DIR": str(home / "data")}
        if shared_store:
            env["RUNFLOW_SHARED_STORE"] = redis_server.url
        argv = [sys.executable, "-c", f"import time; time.sleep(max(0, {at} - time.time())); "
                "from runflow_api.catalogue.cli import main; raise SystemExit(main())",
                "isolate", str(photos), "--out", str(tmp_path / name / "out"), "--quiet", "--concurrency", "2",
                "--report", str(tmp_path / name / "report.json")]
        shells.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for shell in shells:
        out, err = shell.communicate(timeout=120)
        assert shell.returncode == 0, (out + err).decode()
    assert emu.stats["creates"] == 8
    done = [json.loads((tmp_path / name / "report.json").read_text())["summary"]["done"] for name in ("s1", "s2")]
    assert sum(done) == 8 and min(done) >= 2, f"each shell isolated a share of the folder: {done}"
    for name in ("s1", "s2"):
        assert len(list((tmp_path / name / "out").glob("*.png"))) == 8


@pytest.mark.parametrize(("provenance", "force", "rewritten"), [
    ({"waited_for": "machine"}, False, False), ({"shared_hit": True}, False, False),
    ({"waited_for": "machine"}, True, True), ({}, False, True)])
def test_a_shared_out_folder_gets_each_photo_written_once(emu, client_for, tmp_path, provenance, force, rewritten):
    from dataclasses import replace

    from runflow_api.catalogue import isolate as catalogue_run
    from runflow_api.catalogue.folders import Item

    result = replace(client_for(emu).isolate(PHOTOS[0], resolution="1K"), cached=True, **provenance)
    item = Item(source=tmp_path / "p0.png", output=tmp_path / "out" / "p0.png")
    item.output.parent.mkdir()
    item.output.write_bytes(b"written by the machine that produced it")
    summary = catalogue_run.Summary(total=1)
    catalogue_run._settle(item, result, summary, "png", rewrite=force)
    kept = item.output.read_bytes() == b"written by the machine that produced it"
    assert kept != rewritten, "only a result another produced, with its output already there, is not written again"
    assert summary.rows[0]["outputs"] == [str(item.output)] and summary.cached == 1
