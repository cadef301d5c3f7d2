"""Sellers' photo formats: iPhone HEIC (through pillow-heif, refused with its install command without it),
AVIF, and folders in which no file is left out silently: the summary and the report name every file that
is not read, and why."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from colour_science import icc_profile
from PIL import Image
from support import EMULATOR_KEY, product_photo

from runflow_api.catalogue import folders as catalogue
from runflow_api.catalogue.cli import main
from runflow_api.errors import InputRejected
from runflow_api.pictures import formats, images

REPO = Path(__file__).resolve().parents[1]


def heic_bytes(pixels: np.ndarray, **options: object) -> bytes:
    """An iPhone-like HEIC photo (HEVC in a HEIF container), written by pillow-heif's encoder."""
    buffer = io.BytesIO()
    pillow_heif.from_pillow(Image.fromarray(pixels)).save(buffer, quality=95, **options)
    return buffer.getvalue()


def avif_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="AVIF", quality=95)
    return buffer.getvalue()


@pytest.fixture
def service_env(emu, monkeypatch):
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    return emu


def test_heic_and_avif_are_read_like_any_photo(tmp_path: Path) -> None:
    photo = product_photo(4)
    for name, data in (("a.heic", heic_bytes(photo)), ("a.avif", avif_bytes(photo))):
        (tmp_path / name).write_bytes(data)
        read = images.to_array(tmp_path / name)
        assert read.shape == photo.shape, name
        assert np.abs(read.astype(int) - photo).mean() < 4, f"{name} decodes to the photo"
    assert formats.is_heif(heic_bytes(photo)[:64]) and not formats.is_heif(avif_bytes(photo)[:64])


def test_a_heic_with_a_display_p3_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    flat = np.full((48, 64, 3), (200, 60, 50), np.uint8)
    heic = tmp_path / "p3.heic"
    heic.write_bytes(heic_bytes(flat, icc_profile=icc_profile("display-p3")))
    red, green, blue = images.to_array(heic)[24, 32]
    assert red > 210 and green < 50, "P3 (200, 60, 50) is about sRGB (217, 42, 39); read raw it stays (200, 60, 50)"


def test_without_pillow_heif_a_heic_is_refused_with_the_install_command(tmp_path: Path) -> None:
    """A Python without pillow-heif (simulated in a fresh interpreter by making its import fail): the pack
    still imports, and a HEIC named alone or found in a folder is refused naming the command to run."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "IMG_0001.HEIC").write_bytes(heic_bytes(product_photo(5)))
    script = (
        "import sys; sys.modules['pillow_heif'] = None\n"
        "from runflow_api.pictures import images, formats\n"
        "from runflow_api.errors import InputRejected\n"
        "assert not formats.heif_available()\n"
        "try:\n"
        f"    images.to_array({str(photos / 'IMG_0001.HEIC')!r})\n"
        "except InputRejected as exc:\n"
        "    print(exc)\n"
        "from runflow_api.catalogue.cli import main\n"
        f"sys.exit(main(['isolate', {str(photos)!r}, '--out', {str(tmp_path / 'out')!r}, '--emulator', '-q']))\n"
    )
    env = {**os.environ, "RUNFLOW_CACHE_DIR": str(tmp_path / "c"), "RUNFLOW_DATA_DIR": str(tmp_path / "d")}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    refusal = done.stdout.strip()
    assert "HEIC/HEIF photo" in refusal and "pip install pillow-heif" in refusal, refusal
    assert done.returncode == 1, done.stderr
    assert "FAILED" in done.stderr and "pip install pillow-heif" in done.stderr
    assert "1 failed (IMG_0001.HEIC)" in done.stderr


def test_a_folder_of_heic_and_avif_is_isolated_and_nothing_is_left_out_silently(
    service_env, tmp_path: Path, capsys
) -> None:
    """The issue's checks: a folder with a HEIC and an AVIF photo isolates both; a text file named .jpg
    is named in the summary (it fails, before anything is paid); every other file is named with why it
    is not read, in the summary and in the report."""
    photos = tmp_path / "photos"
    (photos / "out").mkdir(parents=True)
    (photos / "IMG_0001.HEIC").write_bytes(heic_bytes(product_photo(6)))
    (photos / "shot.avif").write_bytes(avif_bytes(product_photo(7)))
    (photos / "fake.jpg").write_text("this is a text file with a photo's name")
    (photos / "notes.txt").write_text("shoot list")
    (photos / "DSC_0002.NEF").write_bytes(b"raw sensor data")
    (photos / "out" / "old.png").write_bytes(b"an earlier result")
    report = tmp_path / "report.json"
    code = main(["isolate", str(photos), "--out", str(photos / "out"), "--resolution", "1K", "-q",
                 "--report", str(report)])
    err = capsys.readouterr().err
    assert code == 1  # fake.jpg failed
    assert (photos / "out" / "IMG_0001.png").is_file() and (photos / "out" / "shot.png").is_file()
    assert service_env.stats["creates"] == 2
    assert "1 failed (fake.jpg)" in err
    not_read = next(line for line in err.splitlines() if line.startswith("Not read"))
    for name, why in (("notes.txt", "not an image (.txt)"), ("DSC_0002.NEF", "camera RAW"),
                      (str(photos / "out"), "inside --out")):
        assert name in not_read and why in not_read, (name, not_read)
    data = json.loads(report.read_text())
    reasons = {Path(entry["path"]).name: entry["reason"] for entry in data["not_read"]}
    assert set(reasons) == {"notes.txt", "DSC_0002.NEF", "out"}
    assert data["summary"]["not_read"] == 3
    assert {Path(row["input"]).name: row["status"] for row in data["items"]} == {
        "IMG_0001.HEIC": "done", "shot.avif": "done", "fake.jpg": "failed"}


def test_the_folder_scan_takes_every_format_the_readers_open(tmp_path: Path) -> None:
    for suffix in (".jpg", ".JPEG", ".png", ".webp", ".heic", ".heif", ".avif", ".tif", ".gif", ".bmp", ".psd"):
        Image.new("RGB", (4, 4)).save(tmp_path / "x.png")
        (tmp_path / "x.png").rename(tmp_path / f"photo{suffix}")
    (tmp_path / "readme.md").write_text("x")
    skipped: list[catalogue.Skipped] = []
    items = catalogue.collect([str(tmp_path)], tmp_path / "out", "png", skipped=skipped)
    assert len(items) == 11
    assert [(entry.path.name, entry.reason) for entry in skipped] == [("readme.md", "not an image (.md)")]


def test_a_glob_names_what_it_matched_but_did_not_read(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "a.json").write_text("{}")
    skipped: list[catalogue.Skipped] = []
    items = catalogue.collect([str(tmp_path / "a.*")], tmp_path / "out", "png", skipped=skipped)
    assert [item.source.name for item in items] == ["a.jpg"]
    assert [entry.path.name for entry in skipped] == ["a.json"]


def test_a_text_file_named_jpg_alone_is_refused_by_name(tmp_path: Path) -> None:
    fake = tmp_path / "fake.jpg"
    fake.write_text("hello")
    with pytest.raises(InputRejected, match="fake.jpg is not an image"):
        images.to_array(fake)
