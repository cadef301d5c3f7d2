"""`isolate --formats`: every photo's marketplace files from one paid run, OUT/<preset>/<its path>.jpg,
checked on the files as a user would (canvas, format, exact white borders, fill, cap of the preset's row);
one more preset later pays nothing and renders only what is missing; the same command again touches
nothing; the compliance flags reach the JSON report, the end-of-run line and the contact sheet.

The first test is the check a new user would do: the emulator in its own process, the CLI as a command,
paid runs counted from the emulator's balance.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import EMULATOR_KEY, emulator_process, paid_runs_since, product_photo

from runflow_api import RunflowClient
from runflow_api.catalogue.cli import main
from runflow_api.pictures import marketplace_presets
from runflow_api.pictures.marketplace_checks import JPEG_BLOCK

FIVE = "amazon,walmart,instagram-portrait,pinterest,zalando"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three photos, one of them in a subfolder (its files keep the subfolder below each preset's)."""
    photos = tmp_path / "photos"
    (photos / "shoes").mkdir(parents=True)
    for seed, name in enumerate(("a.jpg", "b.png", "shoes/red.png")):
        Image.fromarray(product_photo(seed + 20, size=(480, 360))).save(photos / name)
    return photos


@pytest.fixture
def soft_env(emulator_factory, monkeypatch):
    emu = emulator_factory(cheap=False, latency=0.05)
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    return emu


def stamps(out: Path) -> dict[str, int]:
    return {path.relative_to(out).as_posix(): path.stat().st_mtime_ns for path in out.rglob("*") if path.is_file()}


def assert_meets_its_row(path: Path, preset: marketplace_presets.Preset) -> None:
    """What a marketplace would check, from the file alone: canvas, format, cap, exact white borders, and
    the product's fill (the box of non-white pixels, give or take the JPEG block its outline rings in)."""
    assert path.stat().st_size <= (preset.cap or 10**12), f"{path}: over the cap"
    with Image.open(path) as image:
        assert image.format == "JPEG" and image.size == (preset.width, preset.height), path
        pixels = np.asarray(image.convert("RGB")).astype(int)
    white = np.array(preset.background)
    for border in (pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]):
        assert (border == white).all(), f"{path}: a border pixel is not exactly {preset.background_hex}"
    product = (pixels != white).any(axis=2)
    rows, cols = np.flatnonzero(product.any(axis=1)), np.flatnonzero(product.any(axis=0))
    fill = max((cols[-1] - cols[0] + 1) / preset.width, (rows[-1] - rows[0] + 1) / preset.height)
    slack = 2 * JPEG_BLOCK / min(preset.width, preset.height)
    assert preset.fill_min - slack <= fill <= preset.fill_max + slack, f"{path}: fill {fill:.3f}"


def test_as_a_user_would_five_presets_pay_three_runs_and_one_more_preset_pays_nothing(folder, tmp_path):
    with emulator_process() as (base_url, env):
        out, report = tmp_path / "out", tmp_path / "report.json"
        shipped = marketplace_presets.builtin()

        def isolate(formats: str) -> tuple[int, str]:
            with RunflowClient(EMULATOR_KEY, base_url, cache=False, data_dir=tmp_path / "watcher") as watcher:
                start = watcher.balance().amount
                assert start is not None
                done = subprocess.run(
                    [sys.executable, "-m", "runflow_api", "isolate", str(folder), "--out", str(out), "-q",
                     "--formats", formats, "--report", str(report)],
                    env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
                assert done.returncode == 0, done.stderr
                return paid_runs_since(watcher, start), done.stderr

        paid, err = isolate(FIVE)
        assert paid == 3, "one paid run per photo, whatever the presets"
        assert "Marketplace files (amazon, walmart, instagram-portrait, pinterest, zalando): 15 written." in err
        for name in FIVE.split(","):
            for relative in ("a.jpg", "b.jpg", "shoes/red.jpg"):
                assert_meets_its_row(out / name / relative, shipped[name])
        rows = json.loads(report.read_text())["items"]
        assert all(sorted(row["formats"]) == sorted(FIVE.split(",")) for row in rows)
        assert all(entry["flags"] == [] for row in rows for entry in row["formats"].values())

        before = stamps(out)
        paid, err = isolate(FIVE + ",shopify")
        after = stamps(out)
        assert paid == 0, "one more preset is rendered from the stored results"
        changed = sorted(name for name in after if before.get(name) != after[name] and not name.startswith("."))
        assert changed == ["shopify/a.jpg", "shopify/b.jpg", "shopify/shoes/red.jpg"], "only what was missing"
        assert "3 written, 15 already there." in err
        for relative in ("a.jpg", "b.jpg", "shoes/red.jpg"):
            assert_meets_its_row(out / "shopify" / relative, shipped["shopify"])

        paid, err = isolate(FIVE + ",shopify")
        assert paid == 0 and stamps(out) == after, "the same command again touches nothing"
        assert "0 written, 18 already there." in err


def isolate(folder: Path, out: Path, *options: str) -> int:
    return main(["isolate", str(folder), "--out", str(out), "-q", *options])


def test_a_bad_preset_is_refused_before_anything_is_spent(soft_env, folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert isolate(folder, out, "--formats", "amazon,etsy") == 2
    assert "no preset 'etsy'" in capsys.readouterr().err
    assert isolate(folder, out, "--formats", "amazon", "--preset", "1200x1500,bg=#ff0000,jpeg") == 2
    assert "JPEG cannot reproduce the background #FF0000" in capsys.readouterr().err
    (tmp_path / "shops.txt").write_text("800x800,fill=0.99,name=tight\n", encoding="utf-8")
    assert isolate(folder, out, "--preset-file", str(tmp_path / "shops.txt")) == 2
    assert "shops.txt line 1" in capsys.readouterr().err
    assert soft_env.stats["creates"] == 0 and not out.exists()


def test_custom_presets_from_a_string_and_a_file_and_the_contact_sheet(soft_env, folder, tmp_path, capsys):
    out, sheet = tmp_path / "out", tmp_path / "sheet.html"
    (tmp_path / "shops.txt").write_text("600x900,fill=0.8,bg=#f5f5f5,png,name=my-shop  # a PNG shop\n",
                                        encoding="utf-8")
    assert isolate(folder, out, "--resolution", "1K", "--formats", "instagram", "--preset",
                   "700x700,fill=0.75,cap=200KB,name=small", "--preset-file", str(tmp_path / "shops.txt"),
                   "--report", str(sheet)) == 0
    assert soft_env.stats["creates"] == 3
    with Image.open(out / "my-shop" / "shoes" / "red.png") as shop:
        assert shop.format == "PNG" and shop.size == (600, 900) and shop.getpixel((0, 0))[:3] == (245, 245, 245)
    assert (out / "small" / "a.jpg").stat().st_size <= 200_000
    page = sheet.read_text(encoding="utf-8")
    assert page.count('class="format"') == 9 and "no file" not in page, "a thumbnail per format and photo"
    assert sorted(path.name for path in (tmp_path / "sheet-thumbs").glob("0-f*.webp")) == [
        "0-f0.webp", "0-f1.webp", "0-f2.webp"]


def test_compliance_flags_reach_the_report_and_the_end_of_run_line(soft_env, folder, tmp_path, capsys):
    """A cap no JPEG of that canvas can meet: the files are written anyway and flagged over_cap."""
    out, report = tmp_path / "out", tmp_path / "r.json"
    assert isolate(folder, out, "--resolution", "1K", "--preset", "3000x3000,cap=1000B,name=tiny",
                   "--report", str(report)) == 0
    err = capsys.readouterr().err
    assert "Note: --resolution 1K is smaller than the 4K" in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("Marketplace files (tiny): 3 written. 3 flagged: 3 over_cap (") and "3 enlarged (" in line
    assert all(name in line for name in ("tiny/a.jpg", "tiny/b.jpg", "tiny/shoes/red.jpg"))
    entry = json.loads(report.read_text())["items"][0]["formats"]["tiny"]
    assert "over_cap" in entry["flags"] and entry["bytes"] > 1000 and Path(entry["path"]).is_file()
    assert json.loads(report.read_text())["summary"]["formats"]["flagged"] == 3


def test_presets_added_to_a_catalogue_stored_at_a_smaller_tier_pay_nothing(soft_env, folder, tmp_path, capsys):
    """The photos were isolated at 1K without presets; Walmart would want 4K, but a second paid run for the
    same photo is never made: its files come from the 1K results (flagged enlarged), and a note says so."""
    out = tmp_path / "out"
    assert isolate(folder, out, "--resolution", "1K") == 0
    capsys.readouterr()
    assert isolate(folder, out, "--formats", "walmart") == 0
    err = capsys.readouterr().err
    assert soft_env.stats["creates"] == 3 and "stored at 1K" in err and "3 enlarged" in err
    assert Image.open(out / "walmart" / "shoes" / "red.jpg").size == (2200, 2200)


def test_the_cut_outs_options_never_reach_the_marketplace_files_or_the_masks(soft_env, folder, tmp_path, capsys):
    """A background, a margin and a shadow asked for the cut-outs draw the cut-outs only: the marketplace
    files and the masks on the photo start from the result as stored (before, the files were cut from the
    white canvas: the whole canvas was 'product', flagged cut_off, the shadow inside)."""
    plain, dressed = tmp_path / "plain", tmp_path / "dressed"
    assert isolate(folder, plain, "--formats", "amazon", "--mask-on-input") == 0
    paid = soft_env.stats["creates"]
    assert isolate(folder, dressed, "--formats", "amazon", "--mask-on-input", "--background", "#ffffff",
                   "--margin", "10", "--shadow", "contact") == 0
    assert soft_env.stats["creates"] == paid, "the same stored results"
    for name in ("a.jpg", "b.jpg", "shoes/red.jpg"):
        assert (plain / "amazon" / name).read_bytes() == (dressed / "amazon" / name).read_bytes(), name
    for name in ("a-mask.png", "b-mask.png", "shoes/red-mask.png"):
        assert np.array_equal(np.asarray(Image.open(plain / name)), np.asarray(Image.open(dressed / name))), name
    with Image.open(dressed / "a.png") as cut_out:
        assert cut_out.mode == "RGB" and cut_out.getpixel((0, 0)) == (255, 255, 255), "the cut-out is dressed"
    assert "cut_off" not in capsys.readouterr().err
