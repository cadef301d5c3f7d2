"""The local claim on its own: exclusive across processes, released by a crash, cancellable, tidy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from support import product_photo

from runflow_api.errors import RunflowCancelled
from runflow_api.money.claims import LocalClaims

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from runflow_api.money.claims import LocalClaims
    with LocalClaims(sys.argv[1]).hold("k1", should_cancel=lambda: False):
        print("held", flush=True)
        time.sleep(60)
    """
)


def _holder(tmp_path: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_a_killed_holder_releases_its_claim(tmp_path):
    process = _holder(tmp_path)
    waits: list[float] = []
    killer = threading.Timer(0.5, lambda: os.kill(process.pid, signal.SIGKILL))
    killer.start()
    started = time.monotonic()
    with LocalClaims(tmp_path).hold("k1", should_cancel=lambda: False, on_wait=lambda who: waits.append(who)) as waited:
        elapsed = time.monotonic() - started
    process.wait(timeout=10)
    assert waited and waits == ["process"], "the second process knew it had waited (and said so once)"
    assert 0.4 < elapsed < 5, elapsed


def test_cancel_while_waiting_returns_promptly(tmp_path):
    process = _holder(tmp_path)
    try:
        deadline = time.monotonic() + 0.3
        started = time.monotonic()
        cancelled = LocalClaims(tmp_path).hold("k1", should_cancel=lambda: time.monotonic() > deadline)
        with pytest.raises(RunflowCancelled, match="another process"), cancelled:
            pass
        assert time.monotonic() - started < 0.3 + 0.25
    finally:
        process.kill()
        process.wait(timeout=10)


def test_claims_are_per_key_and_leave_no_files(tmp_path):
    claims = LocalClaims(tmp_path)
    with claims.hold("k1", should_cancel=lambda: False) as first, claims.hold(
        "k2", should_cancel=lambda: False
    ) as second:
        assert (first, second) == (False, False), "another key never waits"
    assert list(tmp_path.iterdir()) == [], "released claims remove their lock files"


def test_threads_of_one_process_exclude_each_other(tmp_path):
    claims = LocalClaims(tmp_path)
    inside = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        with claims.hold("k1", should_cancel=lambda: False):
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.01)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert most == 1


def test_an_unusable_claims_folder_warns_once_and_still_delivers(emu, client_for, tmp_path, caplog):
    """A file where the claims folder should be: the result still comes, with one warning saying what
    is lost (protection against another process paying at the same moment)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "claims").write_text("not a folder")
    client = client_for(emu)
    for seed in range(2):
        assert client.isolate(product_photo(seed), resolution="1K").run_id
    assert caplog.text.count("Cannot claim inputs") == 1 and emu.stats["creates"] == 2
