"""Reading the key file as editors save it (review 4, item 6): UTF-8, UTF-8 with a byte-order mark, and
UTF-16 with one (Windows Notepad's "Unicode"); anything else is a message naming the file and how to save
it, never the key. A key path that is not a regular file (a named pipe, a device, a folder) is refused
without being opened for reading: a pipe used to block the reader for ever. Checked through the command
line (in a subprocess where a pipe could hang it) and the settings route `GET /runflow/key`.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from routes_support import request
from support import product_photo

from runflow_api.catalogue.cli import main
from runflow_api.errors import InputRejected
from runflow_api.settings import config, directories

KEY = "rf_live_KEYFILETEST000042ab"
SECRET_PART = "KEYFILETEST000042"
REPO = Path(__file__).resolve().parents[1]

ENCODINGS = {
    "utf-8": KEY.encode() + b"\n",
    "utf-8 with BOM": codecs.BOM_UTF8 + KEY.encode() + b"\r\n",
    "utf-16 LE with BOM (Notepad 'Unicode')": codecs.BOM_UTF16_LE + f"{KEY}\r\n".encode("utf-16-le"),
    "utf-16 BE with BOM": codecs.BOM_UTF16_BE + f"{KEY}\r\n".encode("utf-16-be"),
}


def get_key() -> Any:
    return asyncio.run(request("GET", "/runflow/key"))


@pytest.mark.parametrize("data", ENCODINGS.values(), ids=ENCODINGS.keys())
def test_a_key_file_saved_in_any_editor_encoding_is_read(data: bytes) -> None:
    path = directories.key_file_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_bytes(data)
    assert config.resolve_api_key() == KEY
    answer = get_key()
    assert answer.status == 200 and answer.body == {"configured": True, "masked": "rf_live_…42ab", "source": "file"}


def test_the_command_line_runs_with_a_notepad_unicode_key_file(emulator_factory: Any, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    emu = emulator_factory(api_key=KEY)
    path = directories.key_file_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_bytes(ENCODINGS["utf-16 LE with BOM (Notepad 'Unicode')"])
    photo = tmp_path / "in" / "a.png"
    photo.parent.mkdir()
    Image.fromarray(product_photo(1)).save(photo)
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    assert main(["isolate", str(photo.parent), "--out", str(tmp_path / "out"), "-q", "--resolution", "1K"]) == 0
    assert emu.stats["creates"] == 1


@pytest.mark.parametrize("data", [KEY.encode("utf-16-le"), f"{KEY}é".encode("cp1252")],
                         ids=["utf-16 without its byte-order mark", "windows-1252"])
def test_a_key_file_in_another_encoding_names_the_file_and_never_the_key(capsys: pytest.CaptureFixture[str],
                                                                         tmp_path: Path, data: bytes) -> None:
    path = directories.key_file_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_bytes(data)
    with pytest.raises(InputRejected) as refused:
        config.resolve_api_key()
    assert str(path) in refused.value.message and "UTF-8" in refused.value.message
    assert SECRET_PART not in refused.value.message
    answer = get_key()
    assert answer.status == 400 and answer.body["error"]["reason"] == "invalid_config"
    assert str(path) in answer.body["error"]["message"] and SECRET_PART not in answer.text
    assert main(["isolate", str(tmp_path), "--out", str(tmp_path / "out"), "-q"]) == 2
    printed = capsys.readouterr()
    assert str(path) in printed.err and "Traceback" not in printed.err
    assert SECRET_PART not in printed.out + printed.err


def _not_a_file(kind: str, path: Path) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if kind == "a named pipe":
        os.mkfifo(path)
    elif kind == "a folder":
        path.mkdir()
    else:
        return Path("/dev/zero")  # a device that never ends: reading it would fill memory
    return path


@pytest.mark.skipif(sys.platform == "win32", reason="named pipes and /dev are POSIX")
@pytest.mark.parametrize("kind", ["a named pipe", "a device", "a folder"])
def test_a_key_path_that_is_not_a_regular_file_is_refused_without_reading_it(kind: str, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """In a subprocess with a time limit, so a reader blocked on the pipe fails the test, not hangs it."""
    path = _not_a_file(kind, tmp_path / "private" / "api_key")
    env = {**os.environ, "RUNFLOW_KEY_FILE": str(path), "PYTHONPATH": str(REPO)}
    env.pop("RUNFLOW_API_KEY", None)
    done = subprocess.run([sys.executable, "-m", "runflow_api", "isolate", str(tmp_path), "--out",
                           str(tmp_path / "out"), "-q"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"{path}: it is {kind}, not a regular file" in done.stderr
    monkeypatch.setenv("RUNFLOW_KEY_FILE", str(path))
    answer = get_key()
    assert answer.status == 400 and str(path) in answer.body["error"]["message"]


def test_saving_a_key_replaces_a_file_that_could_not_be_read() -> None:
    """The settings panel's way out: Save writes a good file over the unreadable one."""
    path = directories.key_file_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_bytes(codecs.BOM_UTF16_LE + "\ud800A".encode("utf-16-le", "surrogatepass"))  # a lone surrogate
    answer = asyncio.run(request("POST", "/runflow/key", json={"key": KEY}))
    assert answer.status == 200 and answer.body["source"] == "file"
    assert config.resolve_api_key() == KEY
