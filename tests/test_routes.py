"""The pack's /runflow/ routes, served by a real aiohttp server and called over sockets.

Every test gets private key/data directories from conftest's autouse fixture (RUNFLOW_KEY_FILE,
RUNFLOW_DATA_DIR), and connection tests run against a real emulator, never a mock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from routes_support import Answer, load_routes, make_app, request, routes
from support import EMULATOR_KEY, product_photo

from runflow_api.emulator import Emulator, Faults
from runflow_api.service import address as service_address
from runflow_api.settings import config, directories

KEY = "rf_live_ROUTETESTKEY00009876"
KEY_MIDDLE = "ROUTETESTKEY0000"
ENV_KEY = "rf_live_ENVIRONMENTKEY0000555"
STATE_CHANGING = [
    ("POST", "/runflow/key", {"key": KEY}),
    ("DELETE", "/runflow/key", {}),
    ("POST", "/runflow/test", {}),
    ("POST", "/runflow/mode", {"mode": "emulator"}),
]




Call = Callable[..., Answer]


@pytest.fixture
def call() -> Call:
    """`call(method, path, json=..., headers=...)` against a fresh server with the routes."""

    def run(method: str, path: str, **kwargs: Any) -> Answer:
        return asyncio.run(request(method, path, **kwargs))

    return run


def key_file() -> Path:
    return directories.key_file_path()


# -- key ----------------------------------------------------------------------------------------------


def test_no_key_is_reported_as_not_configured(call: Call) -> None:
    answer = call("GET", "/runflow/key")
    assert answer.status == 200
    assert answer.body == {"configured": False, "masked": None, "source": None}


def test_saving_a_key_writes_a_0600_file_and_answers_only_the_masked_form(call: Call) -> None:
    answer = call("POST", "/runflow/key", json={"key": f"  {KEY}\n"})
    assert answer.status == 200
    assert answer.body == {"configured": True, "masked": "rf_live_…9876", "source": "file"}
    assert KEY_MIDDLE not in answer.text
    assert key_file().read_text() == KEY
    assert stat.S_IMODE(os.stat(key_file()).st_mode) == 0o600

    again = call("GET", "/runflow/key")
    assert again.body == answer.body
    assert KEY_MIDDLE not in again.text


def test_a_malformed_key_is_refused_without_echoing_it(call: Call) -> None:
    bad = "rf_live_WITH SPACES AND SECRET1234"
    answer = call("POST", "/runflow/key", json={"key": bad})
    assert answer.status == 400
    assert answer.body["error"]["reason"] == "invalid_config"
    assert "malformed" in answer.body["error"]["message"]
    assert "SPACES AND SECRET" not in answer.text
    assert not key_file().exists()


@pytest.mark.parametrize("body", [{"key": 123}, {"key": None}, {}])
def test_a_key_that_is_not_text_is_refused(call: Call, body: dict[str, Any]) -> None:
    answer = call("POST", "/runflow/key", json=body)
    assert answer.status == 400
    assert answer.body["error"]["reason"] == "bad_request"


def test_an_empty_key_is_refused_as_missing(call: Call) -> None:
    answer = call("POST", "/runflow/key", json={"key": "   "})
    assert answer.status == 400
    assert answer.body["error"]["reason"] == "missing_key"


def test_the_environment_key_wins_and_cannot_be_changed_from_the_browser(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.write_key_file(KEY)
    monkeypatch.setenv(config.KEY_ENV, ENV_KEY)

    status = call("GET", "/runflow/key")
    assert status.body == {"configured": True, "masked": "rf_live_…0555", "source": "env"}
    assert "ENVIRONMENTKEY" not in status.text

    for method, body in (("POST", {"key": "rf_live_OTHERKEY0000000000"}), ("DELETE", {})):
        answer = call(method, "/runflow/key", json=body)
        assert answer.status == 409, method
        assert answer.body["error"]["reason"] == "env_key"
        assert "RUNFLOW_API_KEY" in answer.body["error"]["message"]
    assert key_file().read_text() == KEY


def test_clearing_the_key_removes_the_file(call: Call) -> None:
    config.write_key_file(KEY)
    answer = call("DELETE", "/runflow/key", json={})
    assert answer.status == 200
    assert answer.body == {"configured": False, "masked": None, "source": None}
    assert not key_file().exists()
    assert call("DELETE", "/runflow/key", json={}).status == 200  # clearing twice is fine


def test_key_routes_never_log_the_key(call: Call, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    call("POST", "/runflow/key", json={"key": KEY})
    call("GET", "/runflow/key")
    call("POST", "/runflow/key", json={"key": KEY + " x"})
    call("DELETE", "/runflow/key", json={})
    assert "saved" in caplog.text
    assert KEY_MIDDLE not in caplog.text


# -- what a foreign page could send -------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), STATE_CHANGING)
def test_cross_origin_requests_are_refused(call: Call, method: str, path: str, body: dict[str, Any]) -> None:
    answer = call(method, path, json=body, headers={"Origin": "http://evil.example"})
    assert answer.status == 403
    assert answer.body["error"]["reason"] == "forbidden_origin"
    assert not key_file().exists()
    assert call("GET", "/runflow/mode").body["mode"] == "runflow"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
@pytest.mark.parametrize(("method", "path", "body"), STATE_CHANGING)
def test_non_json_bodies_are_refused(
    call: Call, method: str, path: str, body: dict[str, Any], content_type: str
) -> None:
    answer = call(method, path, data=f"key={KEY}", headers={"Content-Type": content_type})
    assert answer.status == 415
    assert answer.body["error"]["reason"] == "unsupported_media"
    assert not key_file().exists()


def test_a_body_that_is_not_a_json_object_is_refused(call: Call) -> None:
    headers = {"Content-Type": "application/json"}
    assert call("POST", "/runflow/key", data="{not json", headers=headers).status == 400
    assert call("POST", "/runflow/key", data=f'["{KEY}"]', headers=headers).status == 400


def test_same_origin_requests_are_accepted(call: Call) -> None:
    async def same_origin() -> int:
        async with TestClient(TestServer(make_app())) as client:
            origin = f"http://{client.host}:{client.port}"
            response = await client.post("/runflow/key", json={"key": KEY}, headers={"Origin": origin})
            return response.status

    assert asyncio.run(same_origin()) == 200
    assert key_file().exists()


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        (None, "127.0.0.1:8188", True),
        ("http://127.0.0.1:8188", "127.0.0.1:8188", True),
        ("http://LOCALHOST:8188", "localhost:8188", True),
        ("https://comfy.example", "comfy.example", True),
        ("https://comfy.example", "comfy.example:443", True),
        ("http://comfy.example", "comfy.example:80", True),
        ("http://evil.example", "127.0.0.1:8188", False),
        ("http://127.0.0.1:9999", "127.0.0.1:8188", False),
        ("null", "127.0.0.1:8188", False),
        ("file://", "127.0.0.1:8188", False),
        ("http://127.0.0.1:8188", None, False),
        ("http://127.0.0.1:bad", "127.0.0.1:8188", False),
    ],
)
def test_origin_rule(origin: str | None, host: str | None, allowed: bool) -> None:
    assert routes.guards.origin_allowed(origin, host) is allowed


# -- DNS rebinding: a foreign name as Host -----------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), STATE_CHANGING)
def test_a_rebound_name_is_refused_even_when_origin_matches_host(
    call: Call, method: str, path: str, body: dict[str, Any]
) -> None:
    """The rebinding shape: the attacker's page is same-origin with itself, so Host = Origin = its name."""
    headers = {"Host": "rebind.evil.example:8188", "Origin": "http://rebind.evil.example:8188"}
    answer = call(method, path, json=body, headers=headers)
    assert answer.status == 403
    assert answer.body["error"]["reason"] == "forbidden_host"
    assert "RUNFLOW_ALLOWED_HOSTS" in answer.body["error"]["message"]
    assert not key_file().exists()
    assert call("GET", "/runflow/mode").body["mode"] == "runflow"


@pytest.mark.parametrize(
    "path", ["/runflow/key", "/runflow/ledger", "/runflow/mode", "/runflow/price", "/runflow/shared-store"]
)
def test_a_rebound_name_cannot_read_either(call: Call, path: str) -> None:
    """Reads too: a rebinding page must not learn the masked key, the mode or what has been spent."""
    answer = call("GET", path, headers={"Host": "rebind.evil.example:8188"})
    assert answer.status == 403 and answer.body["error"]["reason"] == "forbidden_host"
    assert call("GET", path, headers={"Host": "127.0.0.1:8188"}).status == 200


def test_a_name_in_the_allowlist_is_accepted(call: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(routes.guards.ALLOWED_HOSTS_ENV, "studio.lan, comfy.example")
    headers = {"Host": "comfy.example:8188", "Origin": "http://comfy.example:8188"}
    assert call("POST", "/runflow/key", json={"key": KEY}, headers=headers).status == 200
    assert key_file().read_text() == KEY


@pytest.fixture
def comfy_listening(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Stand in for ComfyUI's parsed command line (`comfy.cli_args.args.listen`), as ComfyUI leaves it."""

    def listen(addresses: str) -> None:
        module = types.ModuleType("comfy.cli_args")
        module.args = types.SimpleNamespace(listen=addresses)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "comfy.cli_args", module)

    return listen


@pytest.mark.parametrize(
    ("host", "listen", "allowed"),
    [
        ("127.0.0.1:8188", None, True),
        ("localhost:8188", None, True),
        ("LOCALHOST.:8188", None, True),
        ("[::1]:8188", None, True),
        ("127.5.6.7", None, True),
        ("evil.example:8188", None, False),
        ("localhost.evil.example", None, False),
        ("192.168.1.20:8188", None, False),
        ("192.168.1.20:8188", "127.0.0.1", False),
        ("evil.example:8188", "127.0.0.1,::1", False),
        ("localhost:8188", "127.0.0.1", True),
        # Exposed on purpose: any Host, names included (a provider's proxy name, a LAN name).
        ("192.168.1.20:8188", "192.168.1.20", True),
        ("192.168.1.21:8188", "192.168.1.20", True),
        ("[fe80::1]:8188", "0.0.0.0,::", True),
        ("abc123-8188.proxy.example-gpu.net", "0.0.0.0", True),
        ("evil.example:8188", "::", True),
        (None, "0.0.0.0", True),
        ("studio.lan:8188", None, True),
        (None, None, False),
        ("", None, False),
        ("127.0.0.1:bad", None, False),
    ],
)
def test_host_rule(
    host: str | None, listen: str | None, allowed: bool, comfy_listening: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(routes.guards.ALLOWED_HOSTS_ENV, "studio.lan")
    if listen is not None:
        comfy_listening(listen)
    assert routes.guards.host_allowed(host) is allowed


@pytest.mark.parametrize(
    ("listen", "beyond"),
    [
        ("127.0.0.1", False),  # ComfyUI's default
        ("127.2.2.2,127.3.3.3", False),
        ("::1", False),
        ("[::1]", False),
        ("::ffff:127.0.0.1", False),
        ("localhost", False),
        (" 127.0.0.1 , ::1 ", False),
        ("0.0.0.0", True),
        ("::", True),
        ("[::]", True),
        ("0.0.0.0,::", True),  # a bare --listen
        ("127.0.0.1,192.168.1.20", True),
        ("10.0.0.5", True),
        ("2001:db8::7", True),
        # Unreadable, or a name (not resolved here): keep the loopback rule.
        ("gpu-box.lan", False),
        ("0.0.0.0.", False),
        (None, False),
        ("", False),
        (" , ", False),
        (8188, False),
        (["0.0.0.0"], False),
    ],
)
def test_how_comfyui_listens_is_read_from_its_listen_value(listen: object, beyond: bool) -> None:
    assert routes.guards.listens_beyond_loopback(listen) is beyond


def test_without_comfyuis_command_line_the_loopback_rule_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside ComfyUI, or if a future ComfyUI moves its arguments, the stricter rule applies."""
    monkeypatch.delitem(sys.modules, "comfy.cli_args", raising=False)
    assert routes.guards.host_allowed("abc123-8188.proxy.example-gpu.net") is False
    monkeypatch.setitem(sys.modules, "comfy.cli_args", types.ModuleType("comfy.cli_args"))  # no `args`
    assert routes.guards.host_allowed("abc123-8188.proxy.example-gpu.net") is False
    assert routes.guards.host_allowed("127.0.0.1:8188") is True


PROXY_NAME = "abc123-8188.proxy.example-gpu.net"


@pytest.mark.parametrize(("method", "path", "body"), STATE_CHANGING)
def test_an_exposed_comfyui_takes_its_proxy_name_but_still_refuses_other_origins(
    call: Call, comfy_listening: Callable[[str], None], method: str, path: str, body: dict[str, Any]
) -> None:
    """`--listen 0.0.0.0` behind a cloud provider's proxy: the page is served under the proxy's name, so
    Host and Origin carry it. Another page's Origin is still refused for everything that changes state."""
    comfy_listening("0.0.0.0")
    foreign = call(method, path, json=body, headers={"Host": PROXY_NAME, "Origin": "https://evil.example"})
    assert foreign.status == 403 and foreign.body["error"]["reason"] == "forbidden_origin"
    assert not key_file().exists()
    assert call("GET", "/runflow/mode", headers={"Host": PROXY_NAME}).body["mode"] == "runflow"
    own = call(method, path, json=body, headers={"Host": PROXY_NAME, "Origin": f"https://{PROXY_NAME}"})
    assert own.status == 200, own.body


def test_an_exposed_comfyui_answers_every_read_under_its_proxy_name(
    call: Call, comfy_listening: Callable[[str], None]
) -> None:
    comfy_listening("0.0.0.0,::")
    for path in ("/runflow/key", "/runflow/ledger", "/runflow/mode", "/runflow/price", "/runflow/shared-store",
                 "/runflow/callback-secret"):
        assert call("GET", path, headers={"Host": f"{PROXY_NAME}:443"}).status == 200, path


def test_a_loopback_comfyui_still_refuses_the_proxy_name_and_says_what_to_do(
    call: Call, comfy_listening: Callable[[str], None]
) -> None:
    comfy_listening("127.0.0.1")
    answer = call("GET", "/runflow/key", headers={"Host": PROXY_NAME})
    assert answer.status == 403 and answer.body["error"]["reason"] == "forbidden_host"
    message = answer.body["error"]["message"]
    assert PROXY_NAME in message and "DNS rebinding" in message and "RUNFLOW_ALLOWED_HOSTS" in message


# -- the key file under load and when it cannot be written ---------------------------------------------


def test_forty_concurrent_saves_all_succeed_and_one_key_wins() -> None:
    keys = [f"rf_live_CONCURRENTKEY{n:04d}ABCD" for n in range(40)]

    async def scenario() -> list[int]:
        async with TestClient(TestServer(make_app())) as client:
            answers = await asyncio.gather(*(client.post("/runflow/key", json={"key": key}) for key in keys))
            return [answer.status for answer in answers]

    assert asyncio.run(scenario()) == [200] * 40
    assert key_file().read_text() in keys
    assert stat.S_IMODE(os.stat(key_file()).st_mode) == 0o600
    assert not [p.name for p in key_file().parent.iterdir() if p.name.endswith(".tmp")]


def test_a_key_folder_that_cannot_be_created_answers_json_naming_it(
    call: Call, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the key folder should be")
    monkeypatch.setenv(directories.KEY_FILE_ENV, str(blocker / "api_key"))
    answer = call("POST", "/runflow/key", json={"key": KEY})
    assert answer.status == 500
    assert answer.body["error"]["reason"] == "write_failed"
    assert str(blocker) in answer.body["error"]["message"]
    assert KEY_MIDDLE not in answer.text


def test_a_shared_key_folder_is_refused_with_what_to_do(
    call: Call, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv(directories.KEY_FILE_ENV, str(shared / "api_key"))
    answer = call("POST", "/runflow/key", json={"key": KEY})
    assert answer.status == 400
    assert "chmod 700" in answer.body["error"]["message"]
    assert not (shared / "api_key").exists()


# -- connection test ----------------------------------------------------------------------------------


def test_connection_test_without_a_key_says_so(call: Call) -> None:
    answer = call("POST", "/runflow/test", json={})
    assert answer.status == 200
    assert answer.body["ok"] is False
    assert answer.body["mode"] == "runflow"
    assert answer.body["error"]["reason"] == "missing_key"
    assert "Settings > Runflow" in answer.body["error"]["message"]


def test_connection_test_reports_orgs_scopes_and_balance(
    call: Call, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(service_address.BASE_ENV, emu.base_url)
    assert call("POST", "/runflow/key", json={"key": EMULATOR_KEY}).status == 200

    answer = call("POST", "/runflow/test", json={})
    assert answer.status == 200
    body = answer.body
    assert body["ok"] is True, body
    assert body["error"] is None
    assert body["orgs"], body
    assert "runs:create" in body["orgs"][0]["scopes"]
    assert body["orgs"][0]["name"]
    assert body["balance"] == "100.00"
    assert body["currency"] == "USD"
    assert EMULATOR_KEY not in answer.text


def test_connection_test_with_a_wrong_key_is_unauthorized(
    call: Call, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(service_address.BASE_ENV, emu.base_url)
    call("POST", "/runflow/key", json={"key": KEY})
    answer = call("POST", "/runflow/test", json={})
    assert answer.body["ok"] is False
    assert answer.body["error"]["reason"] == "unauthorized"
    assert answer.body["error"]["message"]
    assert KEY_MIDDLE not in answer.text


def test_connection_test_when_the_service_cannot_be_reached(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Emulator(api_key=EMULATOR_KEY, port=0) as gone:
        base = gone.base_url
    monkeypatch.setenv(service_address.BASE_ENV, base)
    config.write_key_file(EMULATOR_KEY)
    answer = call("POST", "/runflow/test", json={})
    assert answer.body["ok"] is False
    assert answer.body["error"]["reason"] == "network_error"


def test_connection_test_keeps_a_working_key_when_only_the_balance_fails(
    call: Call, emulator_factory: Callable[..., Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = emulator_factory(faults=Faults(error_rate=1.0, error_status=403, routes={"balance"}))
    monkeypatch.setenv(service_address.BASE_ENV, emu.base_url)
    config.write_key_file(EMULATOR_KEY)
    body = call("POST", "/runflow/test", json={}).body
    assert body["ok"] is True
    assert body["balance"] is None
    assert body["balance_error"]


def test_connection_test_in_emulator_mode_needs_no_key(call: Call) -> None:
    assert call("POST", "/runflow/mode", json={"mode": "emulator"}).status == 200
    body = call("POST", "/runflow/test", json={}).body
    assert body["ok"] is True, body
    assert body["mode"] == "emulator"
    assert body["orgs"]


def test_connection_test_runs_off_the_event_loop(
    emulator_factory: Callable[..., Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow service must not stall ComfyUI: other routes answer while the test waits."""
    emu = emulator_factory(faults=Faults(slow=1.5, routes={"me"}))
    monkeypatch.setenv(service_address.BASE_ENV, emu.base_url)
    config.write_key_file(EMULATOR_KEY)

    async def scenario() -> tuple[float, bool]:
        async with TestClient(TestServer(make_app())) as client:
            slow = asyncio.ensure_future(client.post("/runflow/test", json={}))
            await asyncio.sleep(0.2)
            started = time.monotonic()
            price = await client.get("/runflow/price")
            assert price.status == 200
            quick = time.monotonic() - started
            body = await (await slow).json()
            return quick, body["ok"]

    quick, ok = asyncio.run(scenario())
    assert quick < 0.5
    assert ok is True


def test_connection_test_refuses_an_unknown_mode(call: Call) -> None:
    answer = call("POST", "/runflow/test", json={"mode": "moon"})
    assert answer.status == 400


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("MissingApiKey", "missing_key"),
        ("InputRejected", "invalid_config"),
        ("AuthenticationFailed", "unauthorized"),
        ("PermissionDenied", "forbidden"),
        ("SignedUrlExpired", "forbidden"),
        ("InsufficientCredit", "insufficient_credit"),
        ("RateLimited", "rate_limited"),
        ("ServiceUnavailable", "service_unavailable"),
        ("NotFound", "api_error"),
        ("NetworkError", "network_error"),
        ("RunflowTimeout", "timeout"),
        ("RunFailed", "error"),
    ],
)
def test_reason_codes(error: str, reason: str) -> None:
    from runflow_api import errors

    kind = getattr(errors, error)
    exc = kind.__new__(kind)
    assert routes.answers.reason_for(exc) == reason


# -- mode, price, ledger ------------------------------------------------------------------------------


def test_mode_switches_and_persists(call: Call) -> None:
    expected = {"mode": "runflow", "modes": ["runflow", "emulator"], "locked": False}
    assert call("GET", "/runflow/mode").body == expected
    answer = call("POST", "/runflow/mode", json={"mode": "emulator"})
    assert answer.status == 200
    assert answer.body["mode"] == "emulator"
    assert call("GET", "/runflow/mode").body["mode"] == "emulator"
    assert call("POST", "/runflow/mode", json={"mode": "runflow"}).body["mode"] == "runflow"


@pytest.mark.parametrize("mode", ["moon", None, 3])
def test_an_unknown_mode_is_refused(call: Call, mode: Any) -> None:
    answer = call("POST", "/runflow/mode", json={"mode": mode})
    assert answer.status == 400
    assert call("GET", "/runflow/mode").body["mode"] == "runflow"


def test_mode_pinned_by_the_environment_cannot_be_switched(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNFLOW_MODE", "emulator")
    assert call("GET", "/runflow/mode").body["locked"] is True
    answer = call("POST", "/runflow/mode", json={"mode": "runflow"})
    assert answer.status == 409
    assert "RUNFLOW_MODE" in answer.body["error"]["message"]


def test_price(call: Call) -> None:
    assert call("GET", "/runflow/price").body == {"per_image": "0.27", "currency": "USD"}


def test_ledger_starts_empty(call: Call) -> None:
    body = call("GET", "/runflow/ledger").body
    assert body["all_runs"] == 0
    assert body["all_cost"] == "0.00"


def test_ledger_totals_count_paid_runs(
    call: Call, emu: Emulator, client_for: Callable[..., Any], tmp_path: Path
) -> None:
    client = client_for(emu, data_dir=tmp_path / "data")
    client.isolate_many([product_photo(1), product_photo(2)], aspect_ratio="1:1", resolution="1K")
    body = call("GET", "/runflow/ledger").body
    assert body["all_runs"] == 2
    assert body["all_cost"] == "0.54"
    assert set(body) == {"session_runs", "session_cost", "all_runs", "all_cost"}


def test_shared_store_off_by_default(call: Call) -> None:
    assert call("GET", "/runflow/shared-store").body == {"configured": False}


def test_shared_store_state_is_masked(
    call: Call, emu: Emulator, client_for: Callable[..., Any], tmp_path: Path, redis_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNFLOW_SHARED_STORE", redis_server.url)
    client = client_for(emu, data_dir=tmp_path / "data")
    client.isolate(product_photo(1), resolution="1K")
    body = call("GET", "/runflow/shared-store").body
    assert body["connected"] is True and body["url"] == redis_server.url
    assert body["today"] == {"spent": "0.27", "reserved": "0.00", "fleet": True}
    monkeypatch.setenv("RUNFLOW_SHARED_STORE", "redis://:s3cretpass@127.0.0.1:1/0")
    down = call("GET", "/runflow/shared-store")
    assert down.body["connected"] is False and down.body["url"] == "redis://127.0.0.1:1/0 (password set)"
    assert "s3cretpass" not in down.text


@pytest.mark.parametrize("option", ["socket_timeout=abc", "db=x", "health_check_interval=soon"])
def test_a_store_option_redis_cannot_read_is_reported_not_a_500(
    call: Call, monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    monkeypatch.setenv("RUNFLOW_SHARED_STORE", f"redis://:s3cretpass@127.0.0.1:1/0?{option}")
    answer = call("GET", "/runflow/shared-store")
    assert answer.status == 200 and answer.body["connected"] is False
    problem = answer.body["problem"]
    assert "redis://127.0.0.1:1/0 (password set)" in problem and option.split("=")[0] in problem, problem
    assert "s3cretpass" not in answer.text


# -- registration -------------------------------------------------------------------------------------


def test_routes_register_on_comfyuis_table_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    table = web.RouteTableDef()
    fake_server = types.ModuleType("server")
    fake_server.PromptServer = types.SimpleNamespace(instance=types.SimpleNamespace(routes=table))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "server", fake_server)
    load_routes("runflow_routes_registration")
    registered = {(route.method, route.path) for route in table}  # type: ignore[union-attr]
    assert registered == {
        ("GET", "/runflow/key"),
        ("POST", "/runflow/key"),
        ("DELETE", "/runflow/key"),
        ("POST", "/runflow/test"),
        ("GET", "/runflow/ledger"),
        ("GET", "/runflow/mode"),
        ("POST", "/runflow/mode"),
        ("GET", "/runflow/price"),
        ("GET", "/runflow/shared-store"),
        ("GET", "/runflow/callback-secret"),
        ("POST", "/runflow/callback-secret"),
        ("DELETE", "/runflow/callback-secret"),
        ("POST", "/runflow/callback"),
    }


# -- callbacks: POST /runflow/callback and the callback secret -----------------------------------------

CALLBACK_SECRET = "whsec_ROUTESECRET0000abcd"
SECRET_MIDDLE = "ROUTESECRET0000"


def signed(body: bytes, secret: str = CALLBACK_SECRET) -> dict[str, str]:
    from runflow_api.service.callbacks import sign

    return {"Runflow-Signature": sign(secret, body), "Content-Type": "application/json"}


@pytest.fixture
def callback_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(config.CALLBACK_SECRET_ENV, CALLBACK_SECRET)
    return CALLBACK_SECRET


def test_callback_posts_are_checked_over_the_raw_body(call: Call, callback_secret: str) -> None:
    body = b'{"event": "run.completed", "run_id": "run-unknown-here"}'
    assert call("POST", "/runflow/callback", data=body).status == 401
    assert call("POST", "/runflow/callback", data=body, headers={"Runflow-Signature": "zz"}).status == 401
    assert call("POST", "/runflow/callback", data=body, headers=signed(body, "whsec_someone_else_0000")).status == 401
    reformatted = b'{"event":"run.completed","run_id":"run-unknown-here"}'  # same JSON, other bytes
    assert call("POST", "/runflow/callback", data=reformatted, headers=signed(body)).status == 401
    first = call("POST", "/runflow/callback", data=body, headers=signed(body))
    assert first.status == 200 and first.body == {"ok": True, "waiting": False}
    assert call("POST", "/runflow/callback", data=body, headers=signed(body)).status == 200, "a replay is 2xx"


def test_callback_posts_come_from_anywhere_unlike_the_browser_routes(call: Call, callback_secret: str) -> None:
    """Runflow reaches ComfyUI by its public name, with no Origin: Host and Origin rules do not apply."""
    body = b'{"run_id": "r1"}'
    answer = call("POST", "/runflow/callback", data=body, headers={**signed(body), "Host": "comfy.example.com"})
    assert answer.status == 200


def test_an_oversized_callback_is_413_declared_or_streamed(call: Call, callback_secret: str) -> None:
    big = b"x" * (1024 * 1024 + 10)
    assert call("POST", "/runflow/callback", data=big, headers=signed(big)).status == 413

    async def chunks() -> Any:
        for _ in range(20):
            yield b"y" * 65536

    assert call("POST", "/runflow/callback", data=chunks(), headers={"Runflow-Signature": "0" * 64}).status == 413


def test_without_a_secret_every_callback_is_refused(call: Call) -> None:
    body = b'{"run_id": "r1"}'
    assert call("POST", "/runflow/callback", data=body, headers=signed(body)).status == 401


def test_a_valid_callback_wakes_the_waiting_run(call: Call, callback_secret: str) -> None:
    from runflow_api.service.wakeups import shared_wakeups

    body = b'{"event": "run.completed", "run_id": "run-waited-for"}'
    with shared_wakeups().register("run-waited-for") as wakeup:
        answer = call("POST", "/runflow/callback", data=body, headers=signed(body))
        assert answer.body == {"ok": True, "waiting": True}
        assert wakeup.wait(5.0)


def test_the_callback_secret_is_saved_0600_and_shown_masked(call: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    assert call("GET", "/runflow/callback-secret").body["configured"] is False
    saved = call("POST", "/runflow/callback-secret", json={"secret": f" {CALLBACK_SECRET}\n"})
    assert saved.status == 200 and SECRET_MIDDLE not in saved.text
    assert saved.body["masked"] == "whsec_…abcd" and saved.body["source"] == "file"
    assert saved.body["active"] is False, "no public URL yet"
    path = config.callback_secret_path()
    assert path.read_text() == CALLBACK_SECRET and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    monkeypatch.setenv(service_address.PUBLIC_URL_ENV, "https://comfy.example.com")
    status = call("GET", "/runflow/callback-secret").body
    assert status["active"] is True and status["public_url"] == "https://comfy.example.com"
    body = b'{"run_id": "r2"}'
    assert call("POST", "/runflow/callback", data=body, headers=signed(body)).status == 200, "the file secret counts"
    cleared = call("DELETE", "/runflow/callback-secret", json={})
    assert cleared.body["configured"] is False and not path.exists()


def test_a_malformed_secret_is_refused_without_echoing_it(call: Call, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answer = call("POST", "/runflow/callback-secret", json={"secret": "short SECRETPART"})
    assert answer.status == 400 and "SECRETPART" not in answer.text
    saved = call("POST", "/runflow/callback-secret", json={"secret": CALLBACK_SECRET})
    assert saved.status == 200
    assert SECRET_MIDDLE not in caplog.text and "SECRETPART" not in caplog.text


def test_the_environment_secret_wins(call: Call, callback_secret: str) -> None:
    status = call("GET", "/runflow/callback-secret").body
    assert status["source"] == "env" and SECRET_MIDDLE not in json.dumps(status)
    assert call("POST", "/runflow/callback-secret", json={"secret": CALLBACK_SECRET}).status == 409
    assert call("DELETE", "/runflow/callback-secret", json={}).status == 409


def test_the_secret_routes_are_guarded_like_the_key(call: Call) -> None:
    foreign = {"Origin": "https://evil.example"}
    answer = call("POST", "/runflow/callback-secret", json={"secret": CALLBACK_SECRET}, headers=foreign)
    assert answer.status == 403 and not config.callback_secret_path().exists()
    assert call("GET", "/runflow/callback-secret", headers={"Host": "rebound.example"}).status == 403
