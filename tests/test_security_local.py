"""Local attacks on the key: links planted beside the key file, shared folders, racing writers, masks.

Everything here uses real files, real symlinks and real processes; nothing of config.py is replaced.
"""

from __future__ import annotations

import fcntl
import os
import random
import stat
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runflow_api.errors import InputRejected
from runflow_api.settings import config, directories, secret_files

REPO = Path(__file__).resolve().parents[1]
KEY = "rf_live_LOCALSECURITYKEY00004321"
OTHER_KEY = "rf_live_SECONDLOCALKEY000008765"


def private_key_path(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o700)
    return folder / "api_key"


# -- A: the key file write ----------------------------------------------------------------------------


def plant_links(path: Path, victim: Path) -> list[Path]:
    """Symlinks to `victim` at every name a writer of `path` could predictably open: the old
    `.<name>.<pid>.tmp`, a fixed `.tmp`, the lock file and the key file itself."""
    names = [f".{path.name}.{os.getpid()}.tmp", f".{path.name}.tmp", secret_files.secret_lock_path(path).name]
    links = [path.with_name(name) for name in names] + [path]
    for link in links:
        link.symlink_to(victim)
    return links


def test_links_planted_beside_the_key_file_are_never_written_through(tmp_path: Path) -> None:
    path = private_key_path(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    victim.chmod(0o644)
    links = plant_links(path, victim)
    links[2].unlink()  # the lock file is covered by the next test; here the write must succeed

    config.write_key_file(KEY, path)

    assert victim.read_text() == "precious", "the key went through a planted link"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644, "chmod followed a planted link"
    assert not path.is_symlink() and path.read_text() == KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_link_planted_at_the_lock_file_stops_the_write_without_following_it(tmp_path: Path) -> None:
    path = private_key_path(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    secret_files.secret_lock_path(path).symlink_to(victim)

    with pytest.raises(OSError):
        config.write_key_file(KEY, path)

    assert victim.read_text() == "precious"
    assert not path.exists()


def test_temporary_names_are_not_predictable_and_none_is_left_behind(tmp_path: Path) -> None:
    path = private_key_path(tmp_path)
    for key in (KEY, OTHER_KEY, KEY):
        config.write_key_file(key, path)
    leftovers = sorted(p.name for p in path.parent.iterdir() if p.name.endswith(".tmp"))
    assert leftovers == []
    assert path.read_text() == KEY


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777])
def test_a_folder_others_can_write_to_is_refused_naming_it_and_the_fix(tmp_path: Path, mode: int) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(mode)
    with pytest.raises(InputRejected) as caught:
        config.write_key_file(KEY, folder / "api_key")
    message = str(caught.value)
    assert str(folder) in message and "chmod 700" in message and directories.KEY_FILE_ENV in message
    assert KEY not in message and "LOCALSECURITYKEY" not in message
    assert list(folder.iterdir()) == []


def test_a_new_key_folder_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "api_key"
    config.write_key_file(KEY, path)
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0


WRITER = """
import sys
from pathlib import Path
from runflow_api.settings import secret_files
secret_files.write_secret_file(Path(sys.argv[1]), sys.argv[2])
print("written", flush=True)
"""


def test_another_process_waits_for_the_os_lock(tmp_path: Path) -> None:
    """Two processes serialise on the lock file: a writer started while the lock is held waits."""
    path = private_key_path(tmp_path)
    config.write_key_file(KEY, path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(secret_files.secret_lock_path(path), "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), OTHER_KEY], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        assert writer.poll() is None, writer.communicate()
        assert path.read_text() == KEY
        fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    out, err = writer.communicate(timeout=30)
    assert writer.returncode == 0, err
    assert path.read_text() == OTHER_KEY


def test_many_processes_writing_at_once_all_succeed(tmp_path: Path) -> None:
    path = private_key_path(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    keys = [f"rf_live_PROCESSKEY{n:04d}ABCDEFGH" for n in range(6)]
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), key], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for key in keys]
    for writer in writers:
        _, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
    assert path.read_text() in keys
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- B: masking ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "masked"),
    [
        ("rf_SECRETSECRET1234_ab", "…4_ab"),
        ("sk_SECRETSECRET_abcd1234", "…1234"),
        ("rf_live_abcdefghijklmnop9876", "rf_live_…9876"),
        ("rf_test_abcdefghijklmnop9876", "rf_test_…9876"),
        ("rf_live_SHORT1234", "rf_live_…"),
        ("rf_live_ab", "rf_live_…"),
        ("abc", "…"),
        ("SECRETSECRE", "…"),
        ("SECRETSECRET", "…CRET"),
    ],
)
def test_mask_examples(key: str, masked: str) -> None:
    assert config.mask_key(key) == masked


def random_key(rng: random.Random) -> str:
    """Keys of every shape: known and unknown prefixes, underscores anywhere, any length, odd bytes."""
    alphabet = string.ascii_letters + string.digits + "_" * 6 + " -.'\"\n"
    prefix = rng.choice(["", "", "rf_", "sk_", "rf_live_", "rf_test_", "rf_live", "live_", "x_y_z_"])
    body = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 48)))
    return prefix + body


def test_mask_never_shows_more_than_a_public_prefix_and_four_characters() -> None:
    rng = random.Random(1406)
    for _ in range(5000):
        key = random_key(rng)
        if not key:
            continue
        masked = config.mask_key(key)
        shown_prefix, _, tail = masked.partition("…")
        assert shown_prefix in ("", *config.PUBLIC_KEY_PREFIXES) and key.startswith(shown_prefix), (key, masked)
        assert len(tail) in (0, 4) and key.endswith(tail), (key, masked)
        middle = key[len(shown_prefix) : len(key) - 4]
        if tail:
            assert len(middle) >= 8, f"{masked!r} leaves only {len(middle)} characters of {key!r} hidden"
        windows = {middle[i : i + 6] for i in range(len(middle) - 5)}
        leaked = {w for w in windows if w in masked and w not in shown_prefix}
        assert not leaked, (key, masked, leaked)


@pytest.mark.parametrize(
    ("key", "fault"),
    [("rf_live_WITH SPACE_000000", "characters other than"), ("rf_live_ab", "only 10 characters")],
)
def test_a_malformed_key_is_told_which_shapes_are_accepted(key: str, fault: str) -> None:
    with pytest.raises(InputRejected) as caught:
        config.validate_key(key)
    message = str(caught.value)
    assert fault in message
    assert "at least 12 characters" in message and "letters, digits and '_'" in message
    assert "rf_live_" in message and "rf_test_" in message
    assert "WITH SPACE" not in message


def test_every_key_prefix_is_redacted_and_masked_from_one_list():
    from runflow_api.settings.redact import KEY_PREFIXES, redact

    assert config.PUBLIC_KEY_PREFIXES is KEY_PREFIXES
    assert {"rf_live_", "rf_test_", "rf_svc_"} <= set(KEY_PREFIXES)
    for prefix in KEY_PREFIXES:
        key = f"{prefix}abcdefgh12345678"
        assert "abcdefgh1234" not in redact(f"echoed: {key}, glued: sku_{key}")
        assert config.mask_key(key) == f"{prefix}…5678"


def test_every_secret_prefix_config_knows_is_redacted_by_shape_too():
    """A callback secret the caller did not name (an old one, a colleague's) is hidden like a key."""
    from runflow_api.settings.redact import SECRET_PREFIXES, carries_secret, redact

    assert config.PUBLIC_SECRET_PREFIXES is SECRET_PREFIXES and "whsec_" in SECRET_PREFIXES
    for prefix in SECRET_PREFIXES:
        secret = f"{prefix}Zm9vYmFy+/ba-z=12345678"
        shown = redact(f"echoed: {secret}; glued: hook_{secret}")
        assert "Zm9vYmFy" not in shown and "12345678" not in shown and shown.count(f"{prefix}[redacted]") == 2
        assert carries_secret(f"note {secret}") and config.mask_secret(secret) == f"{prefix}…5678"
    assert redact("masked: whsec_…5678") == "masked: whsec_…5678"
