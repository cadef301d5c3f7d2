"""What the `runflow/product-isolation` model accepts, what it costs, and how our parameters map onto it.

The service's numbers every stage reads live here (the price, the most a run may believably cost, the
largest upload), so pictures, the service's conversation and the money stores share them without
importing one another.

`IsolationParams` is the one carrier of every option that reaches the service or the cache key. The
emulator validates against it and these same tables, so the client and the stand-in service cannot drift.
"""

from __future__ import annotations

import math
from dataclasses import Field, dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import InputRejected

MODEL_ID = "runflow/product-isolation"
ASPECT_RATIOS: tuple[str, ...] = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
AUTO_ASPECT = "auto"
RESOLUTIONS: dict[str, int] = {"1K": 1024, "2K": 2048, "4K": 4096}
PRICE_PER_IMAGE = Decimal("0.27")
MAX_PROMPT_CHARS = 1000
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
"""Runflow refuses uploads over 50 MiB (the emulator too)."""
MAX_COST_PER_RUN = Decimal("100")
"""The most one run may believably cost, in dollars. The list price is $0.27 per image, so $100 is
about 370 times that: room for any real price change or premium setting, yet a single garbled number
from the service ("1e9", a cents or micro-dollar amount read as dollars) can no longer inflate the
session's spend, the all-time totals or the spend guard by millions. A cost outside 0..100 is treated as
unknown and recorded at the list price, with a warning."""


def plausible_cost(value: Any) -> Decimal | None:
    """`value` as a Decimal when it is a finite amount from 0 to MAX_COST_PER_RUN, else None.

    Checked with `is_finite()` before any comparison, because comparing a signalling NaN raises
    InvalidOperation, which would break every later total. Bools are not amounts (JSON true is not $1).
    """
    if value is None or isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        return None
    try:
        cost = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not cost.is_finite() or cost < 0 or cost > MAX_COST_PER_RUN:
        return None
    return cost


def ratio_value(aspect_ratio: str) -> float:
    """"16:9" -> 1.777...: width over height."""
    width, height = aspect_ratio.split(":")
    return int(width) / int(height)


def nearest_aspect_ratio(width: int, height: int, allowed: tuple[str, ...] = ASPECT_RATIOS) -> str:
    """The allowed ratio nearest to width:height, compared in log space so that 2:1 and 1:2 are
    equally far from 1:1 (a linear comparison would favour landscape ratios)."""
    if width <= 0 or height <= 0:
        raise InputRejected(f"Cannot pick an aspect ratio for a {width}x{height} image: it has no pixels.")
    own = math.log(width / height)
    return min(allowed, key=lambda ratio: abs(math.log(ratio_value(ratio)) - own))


def canvas_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """The (width, height) the model renders: the long side is the resolution's pixel count."""
    long_side = RESOLUTIONS[resolution]
    value = ratio_value(aspect_ratio)
    if value >= 1:
        return long_side, max(1, round(long_side / value))
    return max(1, round(long_side * value)), long_side


@dataclass(frozen=True)
class Option:
    """How one field of `IsolationParams` travels; kept in the field's metadata, read by everyone.

    `sent`: the create's `input` carries it under the field's name (the emulator accepts exactly these);
    otherwise it only changes what we upload (and so the result) and is in the cache key alone.
    `required`: the service requires it, so every create carries it.
    `choices`: the values the service accepts; `client_choices` are extra values resolved here first.
    `max_chars`: text is stripped, refused when longer (with `advice`), and None when empty (then left
    out of the input).
    `in_v0_1_0_key`: one of 0.1.0's options, in every cache key (None as ""). Any later option counts in
    the key and the input only when it is not at its default, so existing settings keep their key and
    body byte for byte (tests/test_money_golden.py).
    `cli_help`: the CLI's help for `--name` (booleans become an on/off flag).
    """

    sent: bool
    cli_help: str
    required: bool = False
    choices: tuple[str, ...] = ()
    client_choices: tuple[str, ...] = ()
    max_chars: int | None = None
    advice: str = ""
    in_v0_1_0_key: bool = False


def option_field(default: Any, **how: Any) -> Any:
    """A field of `IsolationParams` with its default and how it travels (`Option`'s arguments)."""
    return field(default=default, metadata={"option": Option(**how)})


@dataclass(frozen=True)
class IsolationParams:
    """Every option that reaches the service or the cache key, validated, before "auto" is resolved
    against an image. The one definition the client's entry points, the CLI, `prepare_job` and the
    emulator read: a new result-changing option is one field here (see docs/CHANGING.md). Options that
    only post-process a result (a background colour, which images to output) are not here: they live in
    `post_processing.PostProcessing` and never reach the service or the key."""

    aspect_ratio: str = option_field(
        "1:1", sent=True, required=True, choices=ASPECT_RATIOS, client_choices=(AUTO_ASPECT,), in_v0_1_0_key=True,
        cli_help="canvas shape; 'auto' picks the allowed ratio nearest each photo",
    )
    resolution: str = option_field(
        "2K", sent=True, required=True, choices=tuple(RESOLUTIONS), in_v0_1_0_key=True, cli_help="long side 1K/2K/4K",
    )
    prompt: str | None = option_field(
        None, sent=True, max_chars=MAX_PROMPT_CHARS, in_v0_1_0_key=True,
        advice="Name the product to isolate in a short phrase, e.g. 'the left shoe'.",
        cli_help="what to isolate, e.g. 'the left shoe'",
    )
    lossless: bool = option_field(
        False, sent=False, in_v0_1_0_key=True,
        cli_help="upload PNG instead of JPEG quality 95 (files the service reads as they are go unchanged)",
    )

    def __post_init__(self) -> None:
        for item, how in option_fields(type(self)):
            object.__setattr__(self, item.name, _checked(item, how, getattr(self, item.name)))

    @classmethod
    def of(cls, params: IsolationParams | None = None, **options: Any) -> IsolationParams:
        """`params` with `options` applied (or the defaults with them): how the client's entry points turn
        `**options` into parameters. An unknown name is refused, naming the ones there are."""
        known = option_names(cls)
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise InputRejected(f"Unknown isolation option(s) {', '.join(unknown)}. The options are: "
                                f"{', '.join(known)}.")
        return replace(params or cls(), **options)

    def resolved_for(self, width: int, height: int) -> IsolationParams:
        """Replace "auto" with the allowed ratio nearest to the image's own shape; every other field kept."""
        if self.aspect_ratio != AUTO_ASPECT:
            return self
        return replace(self, aspect_ratio=nearest_aspect_ratio(width, height))

    def run_input(self, image_url: str) -> dict[str, Any]:
        """The `input` object of a create-run request; an empty prompt is omitted, as the model page asks,
        and so is any later option at its default."""
        if self.aspect_ratio == AUTO_ASPECT:
            raise ValueError("resolve 'auto' with resolved_for() before building the run input")
        body: dict[str, Any] = {"image_url": image_url}
        for item, how in option_fields(type(self)):
            value = getattr(self, item.name)
            if how.sent and value is not None and (how.in_v0_1_0_key or value != item.default):
                body[item.name] = value
        return body

    def key_fields(self) -> dict[str, Any]:
        """This request's part of the cache key (cache.cache_key adds the pixels, model and service)."""
        keyed: dict[str, Any] = {}
        for item, how in option_fields(type(self)):
            value = getattr(self, item.name)
            if how.in_v0_1_0_key:
                keyed[item.name] = "" if value is None else value
            elif value != item.default:
                keyed[item.name] = value
        return keyed


def option_fields(carrier: type[IsolationParams] | None = None) -> list[tuple[Field[Any], Option]]:
    """The fields of `IsolationParams` with how each travels, in declaration order."""
    return [(item, item.metadata["option"]) for item in fields(carrier or IsolationParams)]


def option_names(carrier: type[IsolationParams] | None = None) -> tuple[str, ...]:
    return tuple(item.name for item, _ in option_fields(carrier))


def sent_fields() -> list[tuple[Field[Any], Option]]:
    """The options the create's `input` may carry (besides `image_url`): what the emulator accepts."""
    return [(item, how) for item, how in option_fields() if how.sent]


def _checked(item: Field[Any], how: Option, value: Any) -> Any:
    """One option's value as the client keeps it, or InputRejected naming the option and what to do."""
    name = item.name
    if isinstance(item.default, bool):
        if not isinstance(value, bool):
            raise InputRejected(f"{name} must be true or false, got {value!r}.")
        return value
    if how.choices:
        allowed = (*how.client_choices, *how.choices)
        if value not in allowed:
            raise InputRejected(f"{name} {value!r} is not one the model accepts. Use one of: {', '.join(allowed)}.")
        return value
    if value is None and item.default is None:
        return None
    if not isinstance(value, str):
        raise InputRejected(f"{name} must be text, got {type(value).__name__}.")
    cleaned = value.strip()
    if how.max_chars is not None and len(cleaned) > how.max_chars:
        raise InputRejected(
            f"{name} is {len(cleaned)} characters long; the limit is {how.max_chars}. {how.advice or 'Shorten it.'}"
        )
    return cleaned or None
