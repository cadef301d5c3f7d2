"""The server itself: start/stop, keep-alive, counters, TLS on loopback, and the command line."""

from __future__ import annotations

import http.client
import re
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import requests
import trustme
from emulator_support import KEY, Client

from runflow_api.emulator import Emulator


def test_with_block_starts_and_stops_the_server():
    with Emulator(api_key=KEY, latency=0.01) as emulator:
        base = emulator.base_url
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base)
        assert requests.get(base + "/v1/health", timeout=5).json() == {"ok": True}
    with pytest.raises(requests.ConnectionError):
        requests.get(base + "/v1/health", timeout=5)
    assert emulator.base_url == base, "the last address stays readable"
    emulator.stop()  # a second stop is harmless
    with pytest.raises(RuntimeError, match="not been started"):
        _ = Emulator().base_url


def test_start_twice_is_refused_and_start_returns_self(make_emulator):
    emulator = make_emulator()
    with pytest.raises(RuntimeError, match="already running"):
        emulator.start()


def test_stop_closes_kept_alive_connections(make_emulator):
    emulator = make_emulator()
    session = requests.Session()
    assert session.get(emulator.base_url + "/v1/health", timeout=5).status_code == 200
    emulator.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(emulator.base_url + "/v1/health", timeout=5)


def test_one_connection_serves_many_requests_with_exact_lengths(emulator):
    """requests' pool reuses a connection only when every answer has a Content-Length and keep-alive."""
    parts = urlsplit(emulator.base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    headers = {"Authorization": f"Bearer {KEY}"}
    for method, path in [
        ("GET", "/v1/health"),
        ("GET", "/v1/auth/me"),
        ("GET", "/v1/runs/nope"),
        ("GET", "/nowhere"),
        ("POST", "/v1/asset-uploads"),
        ("GET", "/v1/billing/balance"),
    ]:
        connection.request(method, path, headers=headers, body=b"{}" if method == "POST" else None)
        answer = connection.getresponse()
        body = answer.read()
        assert answer.getheader("Content-Length") == str(len(body)), path
        assert not answer.will_close, path
    sock = connection.sock
    connection.request("GET", "/v1/health")
    connection.getresponse().read()
    assert connection.sock is sock, "the same socket throughout"
    connection.close()


def test_stats_count_requests_and_reset_in_place(emulator, client):
    stats = emulator.stats
    client.run_to_end()
    assert stats["requests"] >= 5 and stats["polls"] >= 1 and stats["creates"] == 1
    emulator.reset_stats()
    assert emulator.stats is stats and set(stats.values()) == {0}
    assert set(stats) >= {
        "uploads",
        "asset_uploads",
        "confirmations",
        "creates",
        "polls",
        "downloads",
        "idempotent_replays",
        "requests",
    }


def test_parallel_clients_are_served_concurrently(make_emulator):
    emulator = make_emulator(latency=0.0)
    emulator.faults.slow = 0.3
    emulator.faults.routes = {"health"}
    errors: list[BaseException] = []

    def call() -> None:
        try:
            assert requests.get(emulator.base_url + "/v1/health", timeout=5).status_code == 200
        except BaseException as exc:  # collected and re-raised by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(10)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert time.monotonic() - started < 1.5, "ten 0.3 s requests overlapped"


def test_balance_and_latency_settings(make_emulator):
    emulator = make_emulator(balance=Decimal("1.239"), latency=0.5)
    assert emulator.balance == Decimal("1.23"), "money is kept in whole cents"
    emulator.latency = 0.0
    client = Client(emulator)
    run_id = client.create(client.stage()["url"]).json()["id"]
    assert emulator.runs[run_id].latency == 0.0
    with pytest.raises(ValueError):
        Emulator(balance="-1")
    with pytest.raises(ValueError):
        Emulator(latency=-1)


@pytest.fixture
def tls_files(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = {name: str(tmp_path / f"{name}.pem") for name in ("cert", "key", "ca")}
    cert.cert_chain_pems[0].write_to_path(files["cert"])
    cert.private_key_pem.write_to_path(files["key"])
    ca.cert_pem.write_to_path(files["ca"])
    return files


def test_tls_on_loopback_serves_the_whole_flow(make_emulator, tls_files):
    emulator = make_emulator(tls_cert=tls_files["cert"], tls_key=tls_files["key"])
    assert emulator.base_url.startswith("https://127.0.0.1:")
    client = Client(emulator)
    client.verify = tls_files["ca"]
    run = client.run_to_end()
    url = run["output"]["image_urls"][0]
    assert url.startswith("https://") and run["input"]["image_url"].startswith("https://")
    assert requests.get(url, verify=tls_files["ca"], timeout=5).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(emulator.base_url + "/v1/health", timeout=5)  # not trusted without the CA
    assert requests.get(emulator.base_url + "/v1/health", verify=tls_files["ca"], timeout=5).ok, (
        "a failed handshake does not hurt the server"
    )


def test_command_line_serves_until_interrupted(tls_files):
    command = [
        sys.executable,
        "-m",
        "runflow_api.emulator",
        "--port",
        "0",
        "--api-key",
        "rf_live_cli_test",
        "--latency",
        "0.1",
        "--cheap",
        "--balance",
        "5",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base), base
        body = {"filename": "a.png", "mime_type": "image/png", "size_bytes": 10}
        assert requests.post(base + "/v1/asset-uploads", json=body, timeout=5).status_code == 401
        answer = requests.post(
            base + "/v1/asset-uploads", json=body, timeout=5, headers={"Authorization": "Bearer rf_live_cli_test"}
        )
        assert answer.status_code == 201 and answer.json()["asset_id"]
        balance = requests.get(
            base + "/v1/billing/balance", timeout=5, headers={"Authorization": "Bearer rf_live_cli_test"}
        )
        assert balance.json()["balance"] == "5.00"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "Ctrl-C" in stderr and "asset-uploads" not in stderr, "requests are not logged unless verbose"


def test_command_line_refuses_a_bad_setting():
    done = subprocess.run(
        [sys.executable, "-m", "runflow_api.emulator", "--port", "0", "--balance", "lots"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 2 and "balance" in done.stderr and not done.stdout


def test_stored_bytes_are_bounded_oldest_first(make_emulator):
    emulator = make_emulator(max_stored_bytes=1500)
    client = Client(emulator)
    old, new = client.stage(b"a" * 1000, "image/png"), client.stage(b"b" * 1000, "image/png")
    evicted = requests.get(old["url"], timeout=5)
    assert evicted.status_code == 404 and evicted.json()["code"] == "FILE_EXPIRED"
    assert requests.get(new["url"], timeout=5).content == b"b" * 1000
    run = client.wait(client.create(old["url"]).json()["id"])
    assert run["failure_code"] == "INPUT_FETCH_FAILED" and "no longer stored" in run["failure_message"]


def test_evicted_outputs_are_rendered_again_identically(make_emulator, monkeypatch):
    from emulator_support import red_square_png

    from runflow_api.emulator import model

    renders = []
    original = model.isolate
    monkeypatch.setattr(model, "isolate", lambda *args: renders.append(args[1]) or original(*args))
    client = Client(make_emulator(cheap=False, max_stored_bytes=60_000))
    first = client.run_to_end("1:1", "1K", red_square_png())
    url = first["output"]["image_urls"][0]
    before = requests.get(url, timeout=10).content
    second = client.run_to_end("16:9", "2K", red_square_png((300, 200)))
    requests.get(second["output"]["image_urls"][0], timeout=10)  # this output pushes the first one out
    assert requests.get(url, timeout=10).content == before
    assert renders == [(1024, 1024), (2048, 1152), (1024, 1024)]
