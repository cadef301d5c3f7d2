"""Fixtures for the emulator's own tests: real servers on loopback (cheap mode, short latency by default)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from emulator_support import KEY, Client

from runflow_api.emulator import Emulator


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def start(**kwargs: Any) -> Emulator:
        kwargs.setdefault("api_key", KEY)
        kwargs.setdefault("latency", 0.05)
        kwargs.setdefault("cheap", True)
        emulator = Emulator(**kwargs).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator()


@pytest.fixture
def client(emulator: Emulator) -> Client:
    return Client(emulator)
