"""The three-step asset upload: slot, presigned PUT, confirmation; re-reading an asset; signed downloads."""

from __future__ import annotations

import http.client
import re
import time
from urllib.parse import urlsplit

import pytest
import requests
from emulator_support import red_square_png

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")


def slot(client, **overrides):
    body = {"filename": "photo.png", "mime_type": "image/png", "size_bytes": 100, **overrides}
    return client.request("POST", "/v1/asset-uploads", json=body)


def test_three_step_upload_then_download_returns_the_same_bytes(client, emulator):
    data = red_square_png()
    answer = slot(client, size_bytes=len(data))
    assert answer.status_code == 201
    assert set(answer.json()) == {"asset_id", "upload_url"}
    put = client.put_bytes(answer.json()["upload_url"], data, "image/png")
    assert put.status_code == 200 and put.headers["Content-Length"] == "0"
    confirmed = client.request(
        "POST", f"/v1/asset-uploads/{answer.json()['asset_id']}/confirmations", json={"folder_id": None}
    )
    assert confirmed.status_code == 201
    asset = confirmed.json()
    assert asset["id"] == answer.json()["asset_id"]
    assert asset["name"] == "photo.png" and asset["mime_type"] == "image/png" and asset["size_bytes"] == len(data)
    assert ISO.match(asset["created_at"])
    assert asset["url"].startswith(emulator.base_url + "/files/") and "expires=" in asset["url"]
    download = requests.get(asset["url"], timeout=5)
    assert download.status_code == 200 and download.content == data
    assert download.headers["Content-Type"] == "image/png"
    assert download.headers["Content-Length"] == str(len(data))
    assert requests.get(asset["thumbnail_url"], timeout=5).status_code == 200
    assert {key: emulator.stats[key] for key in ("asset_uploads", "uploads", "confirmations", "downloads")} == {
        "asset_uploads": 1,
        "uploads": 1,
        "confirmations": 1,
        "downloads": 2,
    }
    assert emulator.assets[asset["id"]]["confirmed"] is True


def test_reading_an_asset_signs_a_fresh_url(client, emulator):
    emulator.faults.output_url_ttl = 0.0
    asset = client.stage()
    assert requests.get(asset["url"], timeout=5).status_code == 403, "minted already expired"
    emulator.faults.output_url_ttl = 600
    again = client.request("GET", f"/v1/assets/{asset['id']}")
    assert again.status_code == 200 and again.json()["id"] == asset["id"]
    assert again.json()["url"] != asset["url"]
    assert requests.get(again.json()["url"], timeout=5).content == red_square_png()


@pytest.mark.parametrize("mime", ["image/jpeg", "image/png", "image/webp"])
def test_each_supported_mime_type_is_accepted(client, mime):
    assert slot(client, mime_type=mime).status_code == 201


@pytest.mark.parametrize("mime", ["image/gif", "text/plain", "IMAGE/PNG", "", None, 5])
def test_other_mime_types_are_422(client, mime):
    answer = slot(client, mime_type=mime)
    assert answer.status_code == 422
    assert answer.json()["code"] == "VALIDATION_ERROR"
    assert [error["loc"] for error in answer.json()["errors"]] == [["body", "mime_type"]]


@pytest.mark.parametrize("size", [1, 52_428_800])
def test_size_limits_are_inclusive(client, size):
    assert slot(client, size_bytes=size).status_code == 201


@pytest.mark.parametrize("size", [0, -1, 52_428_801, "10", 10.0, True, None])
def test_sizes_outside_one_byte_to_50_mib_are_422(client, size):
    answer = slot(client, size_bytes=size)
    assert answer.status_code == 422
    assert [error["loc"] for error in answer.json()["errors"]] == [["body", "size_bytes"]]


@pytest.mark.parametrize("filename", ["", "   ", "dir/photo.png", "a\\b.png", "x" * 256, 7])
def test_bad_filenames_are_422(client, filename):
    answer = slot(client, filename=filename)
    assert answer.status_code == 422
    assert [error["loc"] for error in answer.json()["errors"]] == [["body", "filename"]]


def test_each_problem_is_one_error_entry(client):
    answer = client.request("POST", "/v1/asset-uploads", json={})
    assert answer.status_code == 422
    locs = sorted(tuple(error["loc"]) for error in answer.json()["errors"])
    assert locs == [("body", "filename"), ("body", "mime_type"), ("body", "size_bytes")]
    assert all(error["msg"] == "Field required" for error in answer.json()["errors"])


def test_malformed_json_is_400_and_a_non_object_is_422(client):
    broken = client.request(
        "POST", "/v1/asset-uploads", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["code"] == "INVALID_JSON"
    listed = client.request("POST", "/v1/asset-uploads", json=[1, 2])
    assert listed.status_code == 422 and listed.json()["errors"][0]["loc"] == ["body"]


def test_put_needs_no_key_and_ignores_one(client):
    data = red_square_png()
    answer = slot(client, size_bytes=len(data)).json()
    with_key = requests.put(
        answer["upload_url"],
        data=data,
        timeout=5,
        headers={"Content-Type": "image/png", "Authorization": "Bearer rf_live_wrong"},
    )
    assert with_key.status_code == 200


def test_put_checks_content_type_and_length(client, emulator):
    data = red_square_png()
    url = slot(client, size_bytes=len(data)).json()["upload_url"]
    wrong_type = client.put_bytes(url, data, "image/jpeg")
    assert wrong_type.status_code == 400 and wrong_type.json()["code"] == "CONTENT_TYPE_MISMATCH"
    wrong_size = client.put_bytes(url, data + b"x", "image/png")
    assert wrong_size.status_code == 400 and wrong_size.json()["code"] == "SIZE_MISMATCH"
    assert emulator.stats["uploads"] == 0
    assert client.put_bytes(url, data, "image/png; charset=binary").status_code == 200


def test_put_with_a_forged_or_foreign_signature_is_403(client, make_emulator):
    data = red_square_png()
    url = slot(client, size_bytes=len(data)).json()["upload_url"]
    forged = re.sub(r"sig=(.)", lambda m: "sig=" + ("1" if m.group(1) == "0" else "0"), url)
    assert forged != url
    assert client.put_bytes(forged, data, "image/png").json()["code"] == "URL_SIGNATURE_INVALID"
    unsigned = url.split("?")[0]
    assert client.put_bytes(unsigned, data, "image/png").status_code == 403
    other = make_emulator()
    moved = other.base_url + urlsplit(url).path + "?" + urlsplit(url).query
    assert client.put_bytes(moved, data, "image/png").status_code == 403, "another emulator's secret"


def test_expired_upload_url_is_403_and_a_new_slot_works(client, emulator):
    data = red_square_png()
    emulator.faults.upload_url_ttl = 0.0
    expired = client.put_bytes(slot(client, size_bytes=len(data)).json()["upload_url"], data, "image/png")
    assert expired.status_code == 403 and expired.json()["code"] == "URL_EXPIRED"
    emulator.faults.upload_url_ttl = 0.3
    short = slot(client, size_bytes=len(data)).json()["upload_url"]
    emulator.faults.upload_url_ttl = 600
    long = slot(client, size_bytes=len(data)).json()["upload_url"]
    time.sleep(0.35)
    assert client.put_bytes(short, data, "image/png").status_code == 403, "expired after its TTL"
    assert client.put_bytes(long, data, "image/png").status_code == 200, "still within its TTL"


def test_confirmation_needs_the_bytes_and_fixes_them(client):
    data = red_square_png()
    answer = slot(client, size_bytes=len(data)).json()
    confirm_path = f"/v1/asset-uploads/{answer['asset_id']}/confirmations"
    early = client.request("POST", confirm_path, json={"folder_id": None})
    assert early.status_code == 409 and early.json()["code"] == "UPLOAD_INCOMPLETE"
    client.put_bytes(answer["upload_url"], data, "image/png")
    assert client.request("POST", confirm_path, json={"folder_id": None}).status_code == 201
    late = client.put_bytes(answer["upload_url"], data, "image/png")
    assert late.status_code == 409 and late.json()["code"] == "ASSET_ALREADY_CONFIRMED"
    folder = client.request("POST", confirm_path, json={"folder_id": "fld_1"})
    assert folder.status_code == 404 and folder.json()["code"] == "FOLDER_NOT_FOUND"


def test_unknown_or_unconfirmed_assets_are_404(client):
    assert client.request("GET", "/v1/assets/nope").json()["code"] == "ASSET_NOT_FOUND"
    unconfirmed = slot(client).json()["asset_id"]
    assert client.request("GET", f"/v1/assets/{unconfirmed}").status_code == 404
    missing = client.request("POST", "/v1/asset-uploads/nope/confirmations", json={"folder_id": None})
    assert missing.status_code == 404


def test_download_with_tampered_or_missing_signature_is_403(client):
    url = client.stage()["url"]
    assert requests.get(url.split("?")[0], timeout=5).status_code == 403
    assert requests.get(url.replace("expires=", "expires=9"), timeout=5).status_code == 403


def test_oversize_bodies_are_refused_before_they_are_read(emulator):
    """A 60 MB PUT and a 2 MB JSON body answer 413 from the headers alone, then close the connection."""
    host, port = urlsplit(emulator.base_url).hostname, urlsplit(emulator.base_url).port
    for method, path, length in (
        ("PUT", "/uploads/x?expires=1&sig=0", 60_000_000),
        ("POST", "/v1/asset-uploads", 2_000_000),
    ):
        connection = http.client.HTTPConnection(host, port, timeout=5)
        connection.putrequest(method, path)
        connection.putheader("Content-Length", str(length))
        connection.putheader("Authorization", "Bearer rf_live_emulator_tests_01")
        connection.endheaders()
        answer = connection.getresponse()
        assert answer.status == 413 and answer.getheader("Connection") == "close"
        assert b"PAYLOAD_TOO_LARGE" in answer.read()
        connection.close()


def test_a_large_upload_is_stored_whole(client, emulator):
    data = bytes(range(256)) * (30 * 1024 * 1024 // 256)  # 30 MiB: a 4K PNG's weight
    started = time.monotonic()
    asset = client.stage(data, "image/png")
    assert time.monotonic() - started < 5
    assert emulator.assets[asset["id"]]["size_bytes"] == len(data)
    assert requests.get(asset["url"], timeout=10).content == data
