"""Which input URLs the engine uses: https to public hosts with the real service, this machine with the
emulator, and never a local path from a graph's text widget. Refusals send nothing."""

from __future__ import annotations

import pytest

from runflow_api.flow.preparation import input_url_refusal

REAL = "https://api.runflow.io"
EMULATOR = "http://127.0.0.1:8765"


@pytest.mark.parametrize(
    "url",
    [
        "/etc/passwd",
        "C:\\Users\\me\\photo.png",
        "file:///etc/passwd",
        "ftp://cdn.example.com/x.png",
        "http://cdn.example.com/x.png",
        "https://127.0.0.1/x.png",
        "https://localhost/x.png",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.5/x.png",
        "https://192.168.1.20/x.png",
        "https://[::1]/x.png",
        "https://2130706433/x.png",
        "https://cdn.example.com/a b.png",
        "https://cdn.example.com/x.png\r\nHost: evil",
    ],
)
def test_real_service_refuses(url: str) -> None:
    assert input_url_refusal(url, base_url=REAL) is not None


@pytest.mark.parametrize(
    "url", ["https://cdn.shopify.com/s/files/1/x.jpg?v=2", "https://u:p@images.example.com/x.png", "HTTPS://A.COM/x"]
)
def test_real_service_accepts_public_https(url: str) -> None:
    assert input_url_refusal(url, base_url=REAL) is None


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("http://127.0.0.1:8765/files/a?sig=1", True),
        ("https://127.0.0.1:9/x.png", True),
        ("http://localhost:8765/x.png", True),
        ("https://cdn.example.com/x.png", False),  # the emulator has no internet: say so before any run
        ("/tmp/photo.png", False),
    ],
)
def test_emulator_takes_only_this_machines_urls(url: str, accepted: bool) -> None:
    assert (input_url_refusal(url, base_url=EMULATOR) is None) is accepted
