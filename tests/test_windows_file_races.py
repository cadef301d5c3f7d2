"""Windows' file-sharing failures, simulated on any OS (review 4, item 7; no Windows machine here).

Two OS calls fail on Windows where POSIX waits or succeeds, and each test makes that call fail exactly as
Windows does (the OS call is replaced, never a function of the pack):
- `os.replace` over a file another process has open (an antivirus scan, a second ComfyUI reading the
  cache) raises PermissionError with `winerror` 32 (sharing violation) or 5 (access denied) until that
  process closes it;
- the blocking lock of the credential writer (`msvcrt.locking(LK_LOCK)`; here its POSIX twin `fcntl.flock`)
  gives up after about ten seconds with EDEADLOCK.
Both are retried for a bounded time, then refused with a message naming the file; nothing paid is lost.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from routes_support import request
from support import product_photo

from runflow_api.catalogue.cli import main
from runflow_api.settings import config, directories, fsutil, secret_files

KEY = "rf_live_WINDOWSRACES00000042"


def sharing_violation(target: str) -> PermissionError:
    """The exception Windows raises for a rename over a file open elsewhere ([WinError 32])."""
    exc = PermissionError(errno.EACCES, "The process cannot access the file because it is being used by another "
                          "process", target)
    exc.winerror = 32  # what CPython sets on Windows only
    return exc


def held_open(monkeypatch: pytest.MonkeyPatch, times: int | None, only: Callable[[Path], bool] = lambda _: True
              ) -> tuple[Counter[str], Counter[str]]:
    """Make each rename onto the targets `only` selects fail the Windows way `times` times before it
    succeeds (None: for ever). (attempts, renames done) per target name."""
    real, attempts, done = os.replace, Counter[str](), Counter[str]()

    def replace(source: Any, target: Any, **kwargs: Any) -> None:
        name = Path(target).name
        if only(Path(target)):
            attempts[name] += 1
            if times is None or attempts[name] - done[name] * (times + 1) <= times:
                raise sharing_violation(str(target))
            done[name] += 1
        real(source, target, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return attempts, done


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    for seed in (1, 2):
        Image.fromarray(product_photo(seed)).save(root / f"p{seed}.png")
    return root


def isolate(photos: Path, out: Path) -> int:
    return main(["isolate", str(photos), "--out", str(out), "--resolution", "1K", "-q"])


def test_every_rename_of_a_catalogue_waits_for_the_file_to_be_closed(service_env: Any, photos: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Every rename of the run (its journal, cache, learned durations and outputs) first meets its target
    held open twice, as a scanning antivirus would do."""
    attempts, done = held_open(monkeypatch, 2)
    assert isolate(photos, tmp_path / "out") == 0
    assert service_env.stats["creates"] == 2
    assert {"p1.png", "p2.png"} <= set(done) and any(name.endswith(".rfc") for name in done)
    assert any(name.endswith(".json") and count >= 2 for name, count in done.items()), "the journal, twice"
    assert all(attempts[name] == 3 * count for name, count in done.items()), (attempts, done)
    for name in ("p1.png", "p2.png"):
        with Image.open(tmp_path / "out" / name) as written:
            written.load()


def test_an_output_held_open_for_good_fails_alone_naming_it_and_is_free_to_redo(
    service_env: Any, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(fsutil, "REPLACE_RETRY_S", 0.3)
    out = tmp_path / "out"
    with monkeypatch.context() as held:
        held_open(held, None, only=lambda target: target == out / "p1.png")
        assert isolate(photos, out) == 1
    err = capsys.readouterr().err
    assert f"another program (an antivirus scan, a second ComfyUI, a sync client) kept {out / 'p1.png'} open" in err
    assert (out / "p2.png").is_file() and not (out / "p1.png").exists()
    assert service_env.stats["creates"] == 2
    assert isolate(photos, out) == 0, "closed now: the paid result comes from the cache"
    assert service_env.stats["creates"] == 2 and (out / "p1.png").is_file()


def test_a_key_save_waits_for_the_key_file_to_be_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts, _ = held_open(monkeypatch, 3, only=lambda target: target == directories.key_file_path())
    config.write_key_file(KEY)
    assert attempts[directories.key_file_path().name] == 4
    assert config.resolve_api_key() == KEY


def windows_lock_gives_up(monkeypatch: pytest.MonkeyPatch, times: int | None) -> list[int]:
    """Make the blocking exclusive lock fail as `msvcrt.locking(LK_LOCK)` does after its ten tries,
    `times` times (None: for ever); non-blocking locks (the claims') are left alone."""
    real, calls = fcntl.flock, []

    def flock(fd: int, operation: int) -> None:
        if operation == fcntl.LOCK_EX:
            calls.append(fd)
            if times is None or len(calls) <= times:
                raise OSError(errno.EDEADLK, "Resource deadlock avoided")
        real(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    return calls


def test_a_key_save_keeps_waiting_while_another_saver_holds_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = windows_lock_gives_up(monkeypatch, 2)
    config.write_key_file(KEY)
    assert len(calls) == 3 and config.resolve_api_key() == KEY


def test_a_lock_held_for_good_is_a_clear_answer_naming_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secret_files, "LOCK_WAIT_S", 0.3)
    windows_lock_gives_up(monkeypatch, None)
    answer = asyncio.run(request("POST", "/runflow/key", json={"key": KEY}))
    assert answer.status == 500 and answer.body["error"]["reason"] == "write_failed"
    message = answer.body["error"]["message"]
    assert f"another program has been saving {directories.key_file_path()}" in message, message
    assert "WINDOWSRACES" not in answer.text
    assert not directories.key_file_path().exists()
