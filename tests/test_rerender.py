"""Re-runs re-render: a catalogue's output is a rendering of a stored result, so a re-run with other
rendering options makes it again from the cache (0 paid runs), the same options touch no file, and only a
result that is no longer stored is priced, before anything is spent. `--force` pays again; `--rewrite`
re-renders everything, free.

The last test is the check a new user would do: the emulator in its own process, the CLI as a command,
paid runs counted from the emulator's balance, and files' modification times.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from support import EMULATOR_KEY, emulator_process, paid_runs_since, product_photo

from runflow_api import RunflowClient
from runflow_api.catalogue.cli import main
from runflow_api.catalogue.renderings import RECORD_NAME


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(3):
        Image.fromarray(product_photo(seed + 10)).save(photos / f"p{seed}.jpg")
    return photos


@pytest.fixture
def soft_env(emulator_factory, monkeypatch):
    """The emulator that really isolates (soft edges included), as the CLI's service."""
    emu = emulator_factory(cheap=False)
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    return emu


def state(out: Path) -> dict[str, tuple[int, bytes]]:
    """Each file of the output folder (the record included): (modification time in ns, bytes)."""
    return {str(path.relative_to(out)): (path.stat().st_mtime_ns, path.read_bytes())
            for path in sorted(out.rglob("*")) if path.is_file()}


def outputs_changed(before: dict[str, tuple[int, bytes]], after: dict[str, tuple[int, bytes]]) -> list[str]:
    return [name for name in after if name.endswith(".png") and before.get(name, (0, b""))[1] != after[name][1]]


def isolate(folder: Path, out: Path, *options: str) -> int:
    return main(["isolate", str(folder), "--out", str(out), "--resolution", "1K", "-q", *options])


def test_other_rendering_options_re_render_for_free_and_the_same_touch_nothing(soft_env, folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert isolate(folder, out) == 0
    first = state(out)
    assert soft_env.stats["creates"] == 3 and RECORD_NAME in first

    assert isolate(folder, out, "--background", "#ffffff") == 0
    on_white = state(out)
    assert soft_env.stats["creates"] == 3, "a new background is drawn from the stored results"
    assert sorted(outputs_changed(first, on_white)) == ["p0.png", "p1.png", "p2.png"]
    assert Image.open(out / "p0.png").mode == "RGB"
    err = capsys.readouterr().err
    assert "3 to re-render with other options" in err and "(3 re-rendered with other options)" in err

    assert isolate(folder, out, "--background", "#ffffff", "--edges", "clean") == 0
    clean = state(out)
    assert soft_env.stats["creates"] == 3
    assert outputs_changed(on_white, clean), "clean edges change the soft edge pixels"

    assert isolate(folder, out, "--background", "#ffffff", "--edges", "clean") == 0
    assert state(out) == clean, "the same options again: no file touched, not even the record"
    assert soft_env.stats["creates"] == 3 and "3 already done" in capsys.readouterr().err


def test_margin_re_renders_the_catalogue_and_keeps_the_canvas(soft_env, folder, tmp_path):
    out = tmp_path / "out"
    assert isolate(folder, out, "--background", "white") == 0
    size = Image.open(out / "p1.png").size
    assert isolate(folder, out, "--background", "white", "--margin", "25") == 0
    assert soft_env.stats["creates"] == 3 and Image.open(out / "p1.png").size == size
    assert isolate(folder, out, "--margin", "41") == 2, "refused before anything is done"


def test_outputs_without_a_record_are_kept_unless_rewrite(soft_env, folder, tmp_path, capsys):
    """Outputs written before records were kept (or by hand): their options are unknown, so a re-run keeps
    them; --rewrite makes every output again from the stored results, free."""
    out = tmp_path / "out"
    isolate(folder, out)
    (out / RECORD_NAME).unlink()
    before = state(out)
    assert isolate(folder, out, "--background", "black") == 0
    assert state(out) == before and "3 already done" in capsys.readouterr().err
    assert isolate(folder, out, "--background", "black", "--rewrite") == 0
    assert sorted(outputs_changed(before, state(out))) == ["p0.png", "p1.png", "p2.png"]
    assert soft_env.stats["creates"] == 3, "--rewrite is free"


def test_a_result_no_longer_stored_is_priced_before_anything_is_spent(soft_env, folder, tmp_path, capsys):
    out = tmp_path / "out"
    isolate(folder, out)
    shutil.rmtree(tmp_path / "cache")
    capsys.readouterr()
    assert isolate(folder, out, "--background", "white", "--max-cost", "0.50") == 2
    err = capsys.readouterr().err
    assert "3 to re-render with other options" in err and "3 new run(s) at $0.27 = $0.81" in err
    assert soft_env.stats["creates"] == 3, "refused: nothing more was paid"


def test_force_pays_again(soft_env, folder, tmp_path):
    out = tmp_path / "out"
    isolate(folder, out)
    assert isolate(folder, out, "--force") == 0
    assert soft_env.stats["creates"] == 6


def test_as_a_user_would_emulator_in_its_own_process(folder, tmp_path):
    """Run, then --background '#ffffff', then --edges clean, then the same again: paid runs 3, 0, 0, 0
    from the emulator's balance; outputs change on runs 2 and 3; run 4 touches no file."""
    with emulator_process() as (base_url, env):
        out = tmp_path / "out"
        commands = ([], ["--background", "#ffffff"], ["--background", "#ffffff", "--edges", "clean"],
                    ["--background", "#ffffff", "--edges", "clean"])
        paid, changed, touched = [], [], []
        with RunflowClient(EMULATOR_KEY, base_url, cache=False, data_dir=tmp_path / "watcher") as watcher:
            for options in commands:
                before, start = state(out) if out.exists() else {}, watcher.balance().amount
                assert start is not None
                done = subprocess.run(
                    [sys.executable, "-m", "runflow_api", "isolate", str(folder), "--out", str(out), "--resolution",
                     "1K", "-q", *options], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
                assert done.returncode == 0, done.stderr
                after = state(out)
                paid.append(paid_runs_since(watcher, start))
                changed.append(len(outputs_changed(before, after)))
                touched.append(sum(before.get(name, (0, b""))[0] != stamp for name, (stamp, _) in after.items()))
        assert paid == [3, 0, 0, 0]
        assert changed[:3] == [3, 3, 3] and changed[3] == 0
        assert touched[3] == 0, "the 4th run touches no file"


def test_the_contact_sheet_is_made_when_outputs_are_written_not_decoded_again(soft_env, folder, tmp_path):
    """The thumbnails and flags of each output are made as it is written and recorded; a later report of
    the same catalogue copies them. Shown here by spoiling the outputs' bytes after the first run: a
    report that decoded them again would show no image and no flags."""
    out = tmp_path / "out"
    assert isolate(folder, out, "--report", str(tmp_path / "first.html")) == 0
    made = sorted((out / ".runflow-thumbs").glob("*.webp"))
    assert [path.name for path in made] == [f"p{n}.png.{side}.webp" for n in range(3) for side in ("in", "out")]
    for output in out.glob("*.png"):
        output.write_bytes(b"spoiled: not a PNG any more")
    assert isolate(folder, out, "--report", str(tmp_path / "again.html")) == 0
    sheet = (tmp_path / "again.html").read_text(encoding="utf-8")
    assert sheet.count("<img ") == 6 and "no image" not in sheet
    copied = sorted((tmp_path / "again-thumbs").glob("*.webp"))
    assert sorted(path.read_bytes() for path in copied) == sorted(path.read_bytes() for path in made)
    assert isolate(folder, out, "--report", str(tmp_path / "again.json")) == 0
    rows = json.loads((tmp_path / "again.json").read_text())["items"]
    assert all(row["status"] == "skipped" and isinstance(row["flags"], list) for row in rows), (
        "an earlier run's flags come from its record, not from decoding the (spoiled) file")
