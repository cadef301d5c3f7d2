"""`IsolationParams`, the one carrier of every option that reaches the service or the cache key: copies
keep every field, a new option at its default changes neither key nor body, and the client, the CLI and
the emulator all read the same definition."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from support import product_photo

from runflow_api import InputRejected
from runflow_api.catalogue.cli import build_parser
from runflow_api.emulator.validation import INPUT_FIELDS, check_run_create
from runflow_api.product_isolation import IsolationParams, option_field, option_names, sent_fields


@dataclass(frozen=True)
class WithNewOption(IsolationParams):
    """IsolationParams as it would be after someone appends a result-changing boolean."""

    keep_shadow: bool = option_field(False, sent=True, cli_help="keep the product's shadow")


def test_resolving_auto_keeps_every_other_field():
    params = WithNewOption("auto", "4K", "the left shoe", lossless=True, keep_shadow=True)
    resolved = params.resolved_for(160, 90)
    assert resolved == WithNewOption("16:9", "4K", "the left shoe", lossless=True, keep_shadow=True)
    assert type(resolved) is WithNewOption


def test_a_new_option_at_its_default_changes_neither_key_nor_body():
    old, new = IsolationParams("3:4", "1K", "shoe"), WithNewOption("3:4", "1K", "shoe")
    assert new.key_fields() == old.key_fields()
    assert new.run_input("https://x/a.png") == old.run_input("https://x/a.png")
    changed = WithNewOption("3:4", "1K", "shoe", keep_shadow=True)
    assert changed.key_fields() == {**old.key_fields(), "keep_shadow": True}
    assert changed.run_input("https://x/a.png") == {**old.run_input("https://x/a.png"), "keep_shadow": True}


def test_lossless_is_keyed_but_never_sent():
    params = IsolationParams("1:1", "2K", lossless=True)
    assert params.key_fields()["lossless"] is True
    assert "lossless" not in params.run_input("https://x/a.png")


def test_options_are_checked_by_their_definition():
    with pytest.raises(InputRejected, match="keep_shadow must be true or false"):
        WithNewOption(keep_shadow="yes")  # type: ignore[arg-type]
    with pytest.raises(InputRejected, match=r"Unknown isolation option\(s\) shadow\. The options are: aspect_ratio"):
        IsolationParams.of(shadow=True)
    assert IsolationParams.of(IsolationParams("4:3"), prompt=" cup ") == IsolationParams("4:3", "2K", "cup")
    with pytest.raises(InputRejected, match=r"prompt is 1001 characters long; the limit is 1000\. Name the product"):
        IsolationParams(prompt="x" * 1001)
    with pytest.raises(InputRejected, match=r"resolution '8K' is not one the model accepts\. Use one of: 1K, 2K, 4K"):
        IsolationParams.of(resolution="8K")


def test_an_unknown_option_is_refused_before_anything_is_spent(emu, client_for):
    client = client_for(emu)
    # Both declarations are named: the paid options and the free rendering ones.
    with pytest.raises(InputRejected, match=r"Unknown option\(s\) glow\. Isolation options .*aspect_ratio.*"
                       r"rendering options .*background.*margin.*shadow"):
        client.isolate(product_photo(), aspect_ratio="1:1", glow=True)
    assert emu.stats["creates"] == 0 and emu.stats["uploads"] == 0


def test_the_cli_has_one_flag_per_option():
    parser = build_parser()
    args = parser.parse_args(["isolate", "in", "--out", "out", "--lossless", "--resolution", "4K"])
    given = {name: getattr(args, name) for name in option_names()}  # every option has its flag
    assert given == {**given, "aspect_ratio": "auto", "resolution": "4K", "prompt": None, "lossless": True}


def test_the_emulator_accepts_exactly_the_sent_options():
    assert ("image_url", *(item.name for item, _ in sent_fields())) == INPUT_FIELDS
    assert {"aspect_ratio", "resolution", "prompt"} <= set(INPUT_FIELDS) and "lossless" not in INPUT_FIELDS
    body = {"input": {"image_url": "http://127.0.0.1:1/a.png", "aspect_ratio": "1:1", "resolution": "2K",
                      "lossless": True}}
    errors = check_run_create(body, "127.0.0.1:1")
    assert [error["loc"] for error in errors] == [["body", "input", "lossless"]]
