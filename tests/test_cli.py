"""The catalogue command line against a real emulator: arguments, mirroring, skip/resume, dry-run,
report, exit codes, and Ctrl-C followed by a resuming run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from support import EMULATOR_KEY, product_photo

from runflow_api.catalogue.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def catalogue_dir(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    (root / "shoes" / "summer").mkdir(parents=True)
    (root / "bags").mkdir()
    Image.fromarray(product_photo(1)).save(root / "shoes" / "a.jpg")
    Image.fromarray(product_photo(2)).save(root / "shoes" / "summer" / "b.png")
    Image.fromarray(product_photo(3)).save(root / "bags" / "c.jpg")
    (root / "notes.txt").write_text("not an image")
    return root


def test_folder_is_mirrored_and_rerun_skips_everything(service_env, catalogue_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["isolate", str(catalogue_dir), "--out", str(out), "--resolution", "1K", "-q"]) == 0
    produced = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert produced == ["bags/c.png", "shoes/a.png", "shoes/summer/b.png"]
    assert Image.open(out / "shoes" / "a.png").mode == "RGBA"
    assert service_env.stats["creates"] == 3
    assert main(["isolate", str(catalogue_dir), "--out", str(out), "--resolution", "1K", "-q"]) == 0
    assert service_env.stats["creates"] == 3
    assert "3 already done" in capsys.readouterr().err


def test_deleted_output_comes_back_from_the_cache(service_env, catalogue_dir, tmp_path):
    out = tmp_path / "out"
    main(["isolate", str(catalogue_dir), "--out", str(out), "--resolution", "1K", "-q"])
    (out / "bags" / "c.png").unlink()
    report = tmp_path / "report.json"
    assert main(["isolate", str(catalogue_dir), "--out", str(out), "--resolution", "1K", "-q",
                 "--report", str(report)]) == 0
    assert (out / "bags" / "c.png").exists() and service_env.stats["creates"] == 3
    rows = {Path(r["input"]).name: r for r in json.loads(report.read_text())["items"]}
    assert rows["c.jpg"]["status"] == "cached" and rows["a.jpg"]["status"] == "skipped"


def test_background_and_webp_and_glob(emulator_factory, monkeypatch, catalogue_dir, tmp_path):
    emu = emulator_factory(cheap=False)  # a real matte, so the canvas corner is transparent
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    out = tmp_path / "out"
    code = main(["isolate", str(catalogue_dir / "shoes" / "*.jpg"), "--out", str(out), "--format", "webp",
                 "--background", "#ffffff", "--aspect-ratio", "16:9", "--resolution", "1K", "-q"])
    assert code == 0
    image = Image.open(out / "a.webp")
    assert image.format == "WEBP" and image.size == (1024, 576)
    assert image.convert("RGB").getpixel((2, 2)) == (255, 255, 255)


def test_dry_run_spends_nothing_and_prices_the_work(service_env, catalogue_dir, tmp_path, capsys):
    report = tmp_path / "r.json"
    assert main(["isolate", str(catalogue_dir), "--out", str(tmp_path / "o"), "--dry-run",
                 "--report", str(report)]) == 0
    err = capsys.readouterr().err
    assert "3 new run(s) at $0.27 = $0.81" in err
    assert service_env.stats["requests"] == 0
    assert json.loads(report.read_text())["summary"]["dry_run"] is True


def test_max_cost_refuses_before_spending(service_env, catalogue_dir, tmp_path, capsys):
    code = main(["isolate", str(catalogue_dir), "--out", str(tmp_path / "o"), "--max-cost", "0.50"])
    assert code == 2
    assert "over the spend limit of $0.50" in capsys.readouterr().err
    assert service_env.stats["creates"] == 0


def test_failures_give_exit_1_and_a_report(service_env, catalogue_dir, tmp_path):
    service_env.faults.run_outcome = "failed"
    report = tmp_path / "r.json"
    code = main(["isolate", str(catalogue_dir), "--out", str(tmp_path / "o"), "--resolution", "1K", "-q",
                 "--report", str(report)])
    assert code == 1
    data = json.loads(report.read_text())
    assert data["summary"]["failed"] == 3
    assert all(row["run_id"] and "failed" in row["error"] for row in data["items"])


def test_unreadable_file_fails_alone(service_env, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(product_photo(1)).save(folder / "good.jpg")
    (folder / "broken.jpg").write_bytes(b"not really a jpeg")
    report = tmp_path / "r.json"
    code = main(["isolate", str(folder), "--out", str(tmp_path / "o"), "-q", "--resolution", "1K",
                 "--report", str(report)])
    assert code == 1
    rows = {Path(r["input"]).name: r for r in json.loads(report.read_text())["items"]}
    assert rows["good.jpg"]["status"] == "done" and rows["broken.jpg"]["status"] == "failed"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [(["isolate", "/no/such/place", "--out", "o"], "not a file"),
     (["isolate", "{photos}", "--out", "o", "--concurrency", "0"], "max_concurrency"),
     (["isolate", "{photos}", "--out", "o", "--background", "mauve-ish"], "mauve-ish")],
)
def test_usage_errors_exit_2(service_env, catalogue_dir, argv, needle, capsys):
    argv = [a.replace("{photos}", str(catalogue_dir)) for a in argv]
    assert main(argv) == 2
    assert needle in capsys.readouterr().err
    assert service_env.stats["requests"] == 0


def test_argparse_errors_exit_2():
    with pytest.raises(SystemExit) as caught:
        main(["isolate", "x", "--out", "o", "--resolution", "8K"])
    assert caught.value.code == 2


def test_missing_key_exits_2_and_says_where(emu, monkeypatch, catalogue_dir, tmp_path, capsys):
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    assert main(["isolate", str(catalogue_dir), "--out", str(tmp_path / "o")]) == 2
    assert "RUNFLOW_API_KEY" in capsys.readouterr().err


def test_emulator_flag_needs_no_key(catalogue_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNFLOW_EMULATOR_LATENCY", "0.1")
    assert main(["isolate", str(catalogue_dir), "--out", str(tmp_path / "o"), "--emulator", "-q",
                 "--resolution", "1K"]) == 0
    assert len(list((tmp_path / "o").rglob("*.png"))) == 3


def _ctrl_c_as_at_a_terminal() -> None:
    """In the child, before exec: SIGINT delivered and handled by default, as in a shell. A child inherits
    an ignored or blocked SIGINT from the process that starts it, and a Python started so never sees Ctrl-C;
    this keeps the test independent of what earlier tests did to the worker that runs it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(emulator_factory, tmp_path):
    emu = emulator_factory(latency=4.0)
    folder = tmp_path / "in"
    folder.mkdir()
    for seed in range(6):
        Image.fromarray(product_photo(seed)).save(folder / f"p{seed}.jpg")
    env = {**os.environ, "RUNFLOW_API_BASE": emu.base_url, "RUNFLOW_API_KEY": EMULATOR_KEY,
           "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "runflow_api", "isolate", str(folder), "--out", str(tmp_path / "o"),
            "--resolution", "1K", "-q", "--concurrency", "3"]
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=_ctrl_c_as_at_a_terminal)
    deadline = time.monotonic() + 20
    while emu.stats["creates"] < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=20)
    assert first.returncode == 130, err
    assert "Run the same command again" in err
    created = emu.stats["creates"]
    assert 3 <= created < 6

    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert emu.stats["creates"] == 6, "the runs created before Ctrl-C were collected, not paid again"
    assert len(list((tmp_path / "o").glob("*.png"))) == 6


def test_demo_writes_the_sample_result(tmp_path, monkeypatch, capsys):
    if not (REPO / "examples" / "sneaker.jpg").exists():
        pytest.fail("examples/sneaker.jpg must be committed: the README's first command uses it")
    monkeypatch.setenv("RUNFLOW_EMULATOR_LATENCY", "0.1")
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    assert Image.open(tmp_path / "demo" / "sneaker-isolated.png").mode == "RGBA"
    out = capsys.readouterr().out
    assert "Wrote" in out and "Service: the bundled emulator, nothing was paid." in out


def test_the_demo_never_spends_unless_asked(service_env, tmp_path, monkeypatch, capsys):
    """A key in the environment (or saved once in ComfyUI) does not make the demo use the paid service:
    only --service runflow does, and the output says which service ran."""
    monkeypatch.setenv("RUNFLOW_EMULATOR_LATENCY", "0.1")
    assert main(["demo", "--out", str(tmp_path / "free")]) == 0
    captured = capsys.readouterr()
    assert service_env.stats["requests"] == 0, "the configured service was never contacted"
    assert "on the bundled emulator" in captured.err and "--service runflow" in captured.err
    assert main(["demo", "--out", str(tmp_path / "paid"), "--service", "runflow"]) == 0
    captured = capsys.readouterr()
    assert service_env.stats["creates"] == 1
    assert f"on Runflow at {service_env.base_url}" in captured.err
    assert "Service: Runflow, paid $" in captured.out


# -- metadata, every output, callbacks --------------------------------------------------------------------


def test_metadata_names_the_cli_and_each_input_path(service_env, catalogue_dir, tmp_path):
    from runflow_api import __version__

    assert main(["isolate", str(catalogue_dir), "--out", str(tmp_path / "o"), "--resolution", "1K", "-q",
                 "--metadata", "batch=spring", "--metadata", "owner=studio"]) == 0
    found = sorted((run.metadata["input_path"], run.metadata["batch"]) for run in service_env.runs.values())
    assert found == [("bags/c.jpg", "spring"), ("shoes/a.jpg", "spring"), ("shoes/summer/b.png", "spring")]
    assert all(run.metadata["source"] == "cli" and run.metadata["pack_version"] == __version__
               for run in service_env.runs.values())


@pytest.mark.parametrize("pair", ["no-equals-sign", "source=mine", "pack=x", "bad key=1"])
def test_bad_metadata_exits_2_before_anything_is_sent(service_env, catalogue_dir, tmp_path, capsys, pair):
    assert main(["isolate", str(catalogue_dir), "--out", str(tmp_path / "o"), "-q", "--metadata", pair]) == 2
    assert "--metadata" in capsys.readouterr().err
    assert service_env.stats["requests"] == 0


@pytest.mark.parametrize("pair", ["{key}", "{key}=x", "{key}!=x", "note={key}", "{key}={key}"])
def test_metadata_holding_the_key_is_refused_and_never_printed(service_env, catalogue_dir, tmp_path, capsys,
                                                               monkeypatch, pair):
    key = "CustomTeamKey0000secret9"  # not shaped like a Runflow key: only the configured key gives it away
    monkeypatch.setenv("RUNFLOW_API_KEY", key)
    args = ["isolate", str(catalogue_dir), "--out", str(tmp_path / "o"), "-q", "--metadata", "a=1"]
    assert main([*args, "--metadata", pair.format(key=key)]) == 2
    err = capsys.readouterr().err
    assert "--metadata" in err and "Key0000secret" not in err, err
    assert service_env.stats["requests"] == 0


@pytest.mark.parametrize(("option", "value"), [("--team-budget", "inf"), ("--team-budget", "NaN"),
                                               ("--max-cost", "Infinity"), ("--max-cost", "nan"),
                                               ("--max-cost", "five")])
def test_a_non_finite_dollar_option_is_a_usage_error(service_env, catalogue_dir, tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as stopped:
        main(["isolate", str(catalogue_dir), "--out", str(tmp_path / "o"), "-q", option, value])
    assert stopped.value.code == 2
    assert option in capsys.readouterr().err
    assert service_env.stats["requests"] == 0


@pytest.mark.parametrize("command", [["isolate", "{photos}", "--out", "{out}", "-q"], ["spend"]])
def test_a_store_option_redis_cannot_read_exits_2_naming_it(service_env, catalogue_dir, tmp_path, capsys,
                                                            monkeypatch, command):
    monkeypatch.setenv("RUNFLOW_SHARED_STORE", "redis://:s3cretpass@127.0.0.1:1/0?socket_timeout=abc")
    argv = [part.format(photos=catalogue_dir, out=tmp_path / "o") for part in command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "redis://127.0.0.1:1/0 (password set)" in err and "socket_timeout" in err, err
    assert "Traceback" not in err and "s3cretpass" not in err
    assert service_env.stats["requests"] == 0


def test_every_returned_image_is_written(service_env, catalogue_dir, tmp_path):
    service_env.faults.output_count = 3
    out = tmp_path / "o"
    report = tmp_path / "r.json"
    assert main(["isolate", str(catalogue_dir / "bags"), "--out", str(out), "--resolution", "1K", "-q",
                 "--report", str(report)]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["c-2.png", "c-3.png", "c.png"]
    sizes = {Image.open(out / name).size for name in ("c.png", "c-2.png", "c-3.png")}
    assert len(sizes) == 1
    assert len({(out / name).read_bytes() for name in ("c.png", "c-2.png", "c-3.png")}) == 3
    (row,) = json.loads(report.read_text())["items"]
    assert [Path(p).name for p in row["outputs"]] == ["c.png", "c-2.png", "c-3.png"]


def test_callbacks_from_the_command_line(emulator_factory, monkeypatch, catalogue_dir, tmp_path):
    from comfy_harness import free_port
    from support import CALLBACK_SECRET

    emu = emulator_factory(latency=0.3, callback_secret=CALLBACK_SECRET)
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    monkeypatch.setenv("RUNFLOW_CALLBACK_SECRET", CALLBACK_SECRET)
    port = free_port()
    assert main(["isolate", str(catalogue_dir), "--out", str(tmp_path / "o"), "--resolution", "1K", "-q",
                 "--public-url", f"http://127.0.0.1:{port}", "--callback-listen", f"127.0.0.1:{port}"]) == 0
    assert emu.stats["creates"] == 3 and emu.stats["callbacks_delivered"] == 3
    assert emu.stats["polls"] <= 6
    assert {run.callback_url for run in emu.runs.values()} == {f"http://127.0.0.1:{port}/runflow/callback"}


@pytest.mark.parametrize(
    ("extra", "env_secret", "needle"),
    [(["--public-url", "https://x.example"], True, "go together"),
     (["--callback-listen", "127.0.0.1:0"], True, "go together"),
     (["--public-url", "https://x.example", "--callback-listen", "127.0.0.1:0"], False, "RUNFLOW_CALLBACK_SECRET"),
     (["--public-url", "ftp://x", "--callback-listen", "127.0.0.1:0"], True, "--public-url")],
)
def test_callback_flags_are_checked_before_anything_runs(service_env, monkeypatch, catalogue_dir, tmp_path, capsys,
                                                          extra, env_secret, needle):
    from support import CALLBACK_SECRET

    if env_secret:
        monkeypatch.setenv("RUNFLOW_CALLBACK_SECRET", CALLBACK_SECRET)
    assert main(["isolate", str(catalogue_dir), "--out", str(tmp_path / "o"), "-q", *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err and CALLBACK_SECRET not in err
    assert service_env.stats["requests"] == 0
