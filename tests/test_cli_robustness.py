"""The catalogue command line where paths and money can go wrong: globs that climb out of --out, an
output folder inside the input folder, dry runs without a key, and one figure for what was spent.

Real files, the real CLI entry point and a real emulator over loopback; nothing of the engine is replaced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image
from support import product_photo

from runflow_api.catalogue.cli import main
from runflow_api.catalogue.renderings import RECORD_NAME
from runflow_api.emulator import Emulator
from runflow_api.product_isolation import PRICE_PER_IMAGE


def photos(folder: Path, count: int, first_seed: int = 1) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"p{seed}.jpg" for seed in range(first_seed, first_seed + count)]
    for seed, path in enumerate(paths, start=first_seed):
        Image.fromarray(product_photo(seed)).save(path)
    return paths


# -- C: outputs must stay inside --out ----------------------------------------------------------------


def test_a_glob_that_climbs_out_of_out_never_writes_outside_it(
    service_env: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    photos(Path("in/sub"), 1)
    victim = Path("victim")
    victim.mkdir()
    Image.fromarray(product_photo(7)).save(victim / "v.png")
    before = (victim / "v.png").read_bytes()
    report = tmp_path / "report.json"

    code = main(["isolate", "in/*/../../victim/*.png", "--out", "out2", "--resolution", "1K", "-q",
                 "--report", str(report)])

    assert code == 1
    assert (victim / "v.png").read_bytes() == before, "an output was written outside --out"
    assert sorted(p.name for p in victim.iterdir()) == ["v.png"]
    assert service_env.stats["requests"] == 0, "nothing may be staged or paid for a refused item"
    err = capsys.readouterr().err
    assert "outside --out out2" in err and "v.png" in err
    (row,) = json.loads(report.read_text())["items"]
    assert row["status"] == "failed" and "outside --out" in row["error"]


def test_a_glob_with_dots_that_stays_inside_out_is_written_normalised(service_env: Emulator, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    photos(Path("in/a"), 1)
    photos(Path("in/b"), 1, first_seed=2)
    assert main(["isolate", "in/*/../b/*.jpg", "--out", "out", "--resolution", "1K", "-q"]) == 0
    written = sorted(str(p) for p in Path("out").rglob("*") if p.name != RECORD_NAME)  # what made each output
    assert written == ["out/b", "out/b/p2.png"]


# -- E: the output folder is never an input -----------------------------------------------------------


def test_an_output_folder_inside_the_input_folder_is_not_processed_again(service_env: Emulator,
                                                                         tmp_path: Path) -> None:
    source = tmp_path / "in"
    photos(source, 2)
    out = source / "isolated"
    argv = ["isolate", str(source), "--out", str(out), "--resolution", "1K", "-q"]

    assert main(argv) == 0
    assert service_env.stats["creates"] == 2
    first = sorted(p.relative_to(out) for p in out.rglob("*"))

    assert main(argv) == 0
    assert service_env.stats["creates"] == 2, "the second run paid for the first run's outputs"
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == first
    assert not (out / "isolated").exists()


def test_an_output_folder_given_by_another_spelling_is_still_left_out(service_env: Emulator, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    photos(Path("in"), 1)
    os.symlink("in", "alias")
    assert main(["isolate", "in", "--out", "alias/isolated", "--resolution", "1K", "-q"]) == 0
    assert main(["isolate", "in/**/*.*", "--out", "./in/isolated/", "--resolution", "1K", "-q"]) == 0
    assert service_env.stats["creates"] == 1
    assert not Path("in/isolated/isolated").exists()


def test_an_input_that_is_only_outputs_says_so(service_env: Emulator, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in"
    photos(source / "isolated", 1)
    assert main(["isolate", str(source / "isolated"), "--out", str(source / "isolated"), "-q"]) == 2
    assert "results, not inputs" in capsys.readouterr().err
    assert service_env.stats["requests"] == 0


# -- F: dry runs and one figure for the cost -----------------------------------------------------------


def test_a_dry_run_needs_no_key_and_prices_at_the_list_price(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)  # where a request would go, if one were sent
    photos(tmp_path / "in", 3)
    report = tmp_path / "r.json"

    code = main(["isolate", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--dry-run", "--report", str(report)])

    err = capsys.readouterr().err
    assert code == 0, err
    assert "No Runflow API key" not in err
    assert f"3 new run(s) at ${PRICE_PER_IMAGE} = ${3 * PRICE_PER_IMAGE:.2f} (list price" in err
    assert emu.stats["requests"] == 0
    assert json.loads(report.read_text())["summary"]["dry_run"] is True
    assert not (tmp_path / "o").exists()


def test_an_emulator_dry_run_says_free_and_gives_the_list_price(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    photos(tmp_path / "in", 2)
    assert main(["isolate", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--dry-run", "--emulator"]) == 0
    assert f"free on the emulator (${2 * PRICE_PER_IMAGE:.2f} at Runflow's list price" in capsys.readouterr().err


def test_emulator_runs_cost_nothing_in_the_report_and_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNFLOW_EMULATOR_LATENCY", "0.1")
    photos(tmp_path / "in", 2)
    report = tmp_path / "r.json"
    assert main(["isolate", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--emulator", "-q",
                 "--resolution", "1K", "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["summary"]["cost"] == "0.00" and data["summary"]["emulator"] is True
    assert [row["cost"] for row in data["items"]] == ["0.00", "0.00"]
    assert "Spent free (emulator)" in capsys.readouterr().err


def test_paid_runs_are_counted_once_in_the_report(service_env: Emulator, tmp_path: Path) -> None:
    """Two files with identical pixels share one run: the report charges it once, like run_info."""
    source = tmp_path / "in"
    source.mkdir()
    for name in ("a.png", "b.png"):  # lossless, so both decode to the same pixels
        Image.fromarray(product_photo(1)).save(source / name)
    report = tmp_path / "r.json"
    assert main(["isolate", str(source), "--out", str(tmp_path / "o"), "-q", "--resolution", "1K",
                 "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert service_env.stats["creates"] == 1
    assert sorted(row["cost"] for row in data["items"]) == ["0.00", f"{PRICE_PER_IMAGE:.2f}"]
    assert data["summary"]["cost"] == f"{PRICE_PER_IMAGE:.2f}"


def test_an_output_write_never_follows_a_link_planted_beside_it(tmp_path):
    from PIL import Image

    from runflow_api.catalogue import folders as catalogue

    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    out.mkdir()
    victim.write_text("untouched")
    for planted in (f".photo.png.{os.getpid()}.part", ".photo.png.tmp"):
        (out / planted).symlink_to(victim)
    catalogue.write_atomically(Image.new("RGB", (8, 8), (1, 2, 3)), out / "photo.png", "png")
    assert victim.read_text() == "untouched"
    assert Image.open(out / "photo.png").getpixel((0, 0)) == (1, 2, 3)
    assert sorted(p.name for p in out.iterdir() if not p.is_symlink()) == ["photo.png"], "no temporary file left"
