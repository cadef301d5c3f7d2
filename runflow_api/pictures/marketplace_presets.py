"""Marketplace presets: the canvas, background, product fill, file format and size cap of one marketplace's
image, read from `marketplace_presets.json` (a changed rule is a one-line edit there), from a custom
preset string such as `1200x1500,fill=0.8,bg=#f5f5f5,jpeg,cap=3MB`, or from a file of such strings. A
preset string may also start from a shipped preset and change some of it: `amazon,shadow=contact`.

A preset draws no shadow unless it says so (`shadow=contact` or `drop`, with `shadow_strength` and
`shadow_softness`): a marketplace's main image is judged on its plain background, so a shadow there is
the seller's choice, made per preset.

Everything is checked here, before any money is spent: a preset that cannot be rendered or checked (a
fill that would touch the edges, a JPEG background JPEG cannot keep exactly) is refused with what to do.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import InputRejected
from . import marketplace_encode
from .backgrounds import parse_color
from .shadows import DEFAULT_SOFTNESS, DEFAULT_STRENGTH, SHADOW_NONE, ShadowOptions

DATA_FILE = "marketplace_presets.json"
FILL_LOWEST, FILL_HIGHEST = 0.05, 0.98  # beyond 0.98 a small canvas has no background margin left
FILL_TOLERANCE = 0.01  # a single fill value allows +-1 percentage point (pixel rounding, resampling rims)
MAX_SIDE = 10000  # px; a canvas larger than this is a typo, and would take seconds per file
DEFAULT_FILL = 0.85
CUSTOM_HELP = ("A custom preset is WIDTHxHEIGHT (or a shipped preset's name, to change some of it) followed by "
               "any of fill=0.85 (or 85%, or a range 0.85-0.9), bg=#ffffff, jpeg|png|webp, cap=3MB (B, KB, MB; "
               "1 MB = 1,000,000 bytes), name=my-shop and shadow=none|contact|drop (with shadow_strength=0.5 and "
               "shadow_softness=0.5), separated by commas, e.g. '1200x1500,fill=0.8,bg=#f5f5f5,jpeg,cap=3MB' "
               "or 'amazon,shadow=contact'.")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_SIZE = re.compile(r"(\d{1,6})\s*[x×]\s*(\d{1,6})")
_CAP = re.compile(r"(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?")
_COMMENT = re.compile(r"(?:^|\s)#")
_CAP_UNITS = {"b": 1, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3}


@dataclass(frozen=True)
class Preset:
    """One marketplace's image. `fill` is the target share of the canvas that the product's box spans along
    its limiting side; a file passes when its fill is within [`fill_min`, `fill_max`]. `cap` in bytes
    (None: no limit). `source` and `checked` say where the rule comes from and when it was last compared."""

    name: str
    width: int
    height: int
    background: tuple[int, int, int]
    fill: float
    fill_min: float
    fill_max: float
    format: str
    cap: int | None
    source: str = "custom"
    checked: str = ""
    spec: str = field(default="", compare=False)  # the text it was read from, for error messages
    shadow: ShadowOptions = ShadowOptions()  # none unless the preset asks for one

    @property
    def extension(self) -> str:
        """The file name ending: '.jpg' for JPEG."""
        return marketplace_encode.EXTENSIONS[self.format]

    @property
    def background_hex(self) -> str:
        return "#{:02X}{:02X}{:02X}".format(*self.background)

    def describe(self) -> dict[str, Any]:
        """The preset as plain values (the JSON report, the `formats` table, the node's UI)."""
        values: dict[str, Any] = {
            "name": self.name, "width": self.width, "height": self.height, "background": self.background_hex,
            "fill": self.fill, "fill_min": self.fill_min, "fill_max": self.fill_max, "format": self.format,
            "cap": self.cap, "source": self.source, "checked": self.checked}
        if self.shadow.mode != SHADOW_NONE:  # only then: a preset without one is described as before it existed
            values.update(shadow=self.shadow.mode, shadow_strength=self.shadow.strength,
                          shadow_softness=self.shadow.softness)
        return values


def builtin() -> dict[str, Preset]:
    """The shipped presets by name, in the data file's order."""
    return {preset.name: preset for preset in _shipped()}


@functools.cache
def _shipped() -> tuple[Preset, ...]:
    text = resources.files(__package__).joinpath(DATA_FILE).read_text(encoding="utf-8")
    rows = json.loads(text)["presets"]
    return tuple(from_row(row, where=f"{DATA_FILE} preset {row.get('name')!r}") for row in rows)


def from_row(row: dict[str, Any], *, where: str) -> Preset:
    """A preset from a data file row (the shape of `marketplace_presets.json`), checked."""
    try:
        fill = float(row["fill"])
        cap = row.get("cap")
        return checked(Preset(
            name=str(row["name"]), width=int(row["width"]), height=int(row["height"]),
            background=_colour(str(row.get("background", "#FFFFFF")), where),
            fill=fill, fill_min=float(row.get("fill_min", fill - FILL_TOLERANCE)),
            fill_max=float(row.get("fill_max", fill + FILL_TOLERANCE)), format=_format(str(row["format"]), where),
            cap=None if cap is None else _cap(str(cap), where), source=str(row.get("source", "")),
            checked=str(row.get("checked", "")), spec=where,
            shadow=_shadow(str(row.get("shadow", SHADOW_NONE)), row.get("shadow_strength"),
                           row.get("shadow_softness"), where),
        ))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputRejected(f"{where}: {exc!r} is missing or malformed. Each preset needs name, width, "
                            "height, fill and format (background, fill_min, fill_max, cap, source, checked "
                            "optional).") from None


def parse_custom(spec: str, *, where: str = "custom preset") -> Preset:
    """A preset from a string such as `1200x1500,fill=0.8,bg=#f5f5f5,jpeg,cap=3MB` (see CUSTOM_HELP).
    Unset parts default to fill 0.85, white, JPEG, no cap and no shadow; the name defaults to the size. A
    string starting with a shipped preset's name starts from that preset (and keeps its name)."""
    if not isinstance(spec, str) or not spec.strip():
        raise InputRejected(f"{where} is empty. {CUSTOM_HELP}")
    at = f"{where} {spec!r}"
    tokens = [raw.strip() for raw in spec.split(",")]
    base = builtin().get(tokens[0].lower())
    values: dict[str, Any] = {"fill": None, "bg": (255, 255, 255), "format": "jpeg", "cap": None, "name": None,
                              "size": None, "shadow": SHADOW_NONE, "shadow_strength": None,
                              "shadow_softness": None}
    if base is not None:
        tokens = tokens[1:]
        values.update(fill=(base.fill, base.fill_min, base.fill_max), bg=base.background, format=base.format,
                      cap=base.cap, name=base.name, size=(base.width, base.height))
    for token in tokens:
        _read_token(token, values, at)
    if values["size"] is None:
        raise InputRejected(f"{at} has no size. {CUSTOM_HELP}")
    width, height = values["size"]
    fill, fill_min, fill_max = values["fill"] or (DEFAULT_FILL, DEFAULT_FILL - FILL_TOLERANCE,
                                                  DEFAULT_FILL + FILL_TOLERANCE)
    return checked(Preset(
        name=values["name"] or f"{width}x{height}", width=width, height=height, background=values["bg"],
        fill=fill, fill_min=fill_min, fill_max=fill_max, format=values["format"], cap=values["cap"],
        source=f"custom, from {base.name}" if base is not None else "custom", spec=at,
        shadow=_shadow(values["shadow"], values["shadow_strength"], values["shadow_softness"], at),
    ))


def _read_token(token: str, values: dict[str, Any], at: str) -> None:
    """One comma-separated part of a preset string, into `values` (refused with what to write instead)."""
    lowered = token.lower()
    key, _, value = lowered.partition("=")
    text = token.partition("=")[2].strip()
    if (match := _SIZE.fullmatch(lowered)) is not None:
        values["size"] = int(match[1]), int(match[2])
    elif lowered in ("jpeg", "jpg", "png", "webp"):
        values["format"] = _format(lowered, at)
    elif not value or key not in ("fill", "bg", "background", "cap", "name", "shadow", "shadow_strength",
                                  "shadow_softness"):
        raise InputRejected(f"{at}: I cannot read {token!r}. {CUSTOM_HELP}")
    elif key == "fill":
        values["fill"] = _fill_range(text, at)
    elif key == "cap":
        values["cap"] = _cap(text, at)
    elif key in ("bg", "background"):
        values["bg"] = _colour(text, at)
    elif key == "name":
        values["name"] = text.lower()
    else:
        values[key] = text.lower() if key == "shadow" else _number(key, text, at)


def read_file(path: str | Path) -> list[Preset]:
    """Custom presets from a text file: one preset string per line (give each a name=). A # at the start of
    a line or after a space starts a comment (bg=#f5f5f5 is a colour)."""
    location = Path(path)
    try:
        lines = location.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputRejected(f"Cannot read the preset file {location}: {exc}. Give a UTF-8 text file with one "
                            f"preset per line. {CUSTOM_HELP}") from None
    texts = [(number, _COMMENT.split(line, maxsplit=1)[0]) for number, line in enumerate(lines, start=1)]
    presets = [parse_custom(text, where=f"{location} line {number}") for number, text in texts if text.strip()]
    if not presets:
        raise InputRejected(f"The preset file {location} holds no preset. {CUSTOM_HELP}")
    return presets


def select(names: str, custom: list[Preset] | None = None) -> list[Preset]:
    """The presets named in `names` (comma-separated, or 'all' for every shipped one), looked up among the
    shipped presets and `custom` (a custom preset's name wins over a shipped one's)."""
    known = {**builtin(), **{preset.name: preset for preset in custom or []}}
    wanted = [name.strip().lower() for name in names.split(",") if name.strip()]
    if not wanted:
        raise InputRejected(f"No preset named. Use 'all' or some of: {', '.join(known)}.")
    chosen: dict[str, Preset] = {}
    for name in wanted:
        if name == "all":
            chosen.update(builtin())
        elif name in known:
            chosen[name] = known[name]
        else:
            raise InputRejected(f"There is no preset {name!r}. Use 'all' or some of: {', '.join(known)}; "
                                f"or define one. {CUSTOM_HELP}")
    return list(chosen.values())


def checked(preset: Preset) -> Preset:
    """`preset` if it can be rendered and checked as it says; else InputRejected naming it and what to do."""
    where = preset.spec or f"preset {preset.name!r}"
    if not _NAME.fullmatch(preset.name):
        raise InputRejected(f"{where}: the name {preset.name!r} must be 1-64 lowercase letters, digits, '.', '_' "
                            "or '-', starting with a letter or digit (it names a folder and a file).")
    if not (16 <= preset.width <= MAX_SIDE and 16 <= preset.height <= MAX_SIDE):
        raise InputRejected(f"{where}: a canvas of {preset.width}x{preset.height} px is outside 16..{MAX_SIDE} px "
                            "a side. Give the marketplace's size, e.g. 2000x2000.")
    if not FILL_LOWEST <= preset.fill_min <= preset.fill <= preset.fill_max <= FILL_HIGHEST + FILL_TOLERANCE:
        raise InputRejected(f"{where}: fill {preset.fill} (allowed {preset.fill_min}-{preset.fill_max}) must lie "
                            f"within {FILL_LOWEST}-{FILL_HIGHEST}, and the target within its range, e.g. fill=0.85: "
                            "the product is centred and never touches an edge.")
    if preset.cap is not None and preset.cap < 1000:
        raise InputRejected(f"{where}: a cap of {preset.cap} bytes cannot hold an image. Give it with a unit, "
                            "e.g. cap=3MB.")
    if preset.format == "jpeg" and not marketplace_encode.exact_in_jpeg(preset.background):
        near = marketplace_encode.nearest_exact_in_jpeg(preset.background)
        hint = f"#{near[0]:02X}{near[1]:02X}{near[2]:02X} is the nearest that it keeps" if near else "greys always are"
        raise InputRejected(f"{where}: JPEG cannot reproduce the background {preset.background_hex} exactly (its "
                            f"colour space rounds it), so its background check could never pass; {hint}. "
                            "Or choose png or webp.")
    return preset


def _number(key: str, text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputRejected(f"{where}: {key} {text!r} is not a number from 0 to 1, e.g. {key}=0.5.") from None


def _shadow(mode: str, strength: Any, softness: Any, where: str) -> ShadowOptions:
    """The preset's shadow (strength and softness default as the rendering option's), checked as it is."""
    try:
        return ShadowOptions(mode, DEFAULT_STRENGTH if strength is None else float(strength),
                             DEFAULT_SOFTNESS if softness is None else float(softness))
    except InputRejected as exc:
        raise InputRejected(f"{where}: {exc}") from None


def _colour(text: str, where: str) -> tuple[int, int, int]:
    try:
        colour = parse_color(text)
    except InputRejected as exc:
        raise InputRejected(f"{where}: {exc}") from None
    if colour is None:
        raise InputRejected(f"{where}: a marketplace image needs a background colour, not {text!r}; e.g. bg=#ffffff.")
    return colour


def _format(text: str, where: str) -> str:
    fmt = "jpeg" if text.lower() == "jpg" else text.lower()
    if fmt not in marketplace_encode.FORMATS:
        raise InputRejected(f"{where}: the format {text!r} is not one of {', '.join(marketplace_encode.FORMATS)}.")
    return fmt


def _fill_range(text: str, where: str) -> tuple[float, float, float]:
    """'0.85', '85%' or '0.85-0.9' -> (target, lowest, highest); a range targets its middle."""
    def share(part: str) -> float:
        part = part.strip()
        try:
            return float(part[:-1]) / 100 if part.endswith("%") else float(part)
        except ValueError:
            raise InputRejected(f"{where}: fill {text!r} is not a share like 0.85, 85% or 0.85-0.9.") from None

    low, dash, high = text.partition("-")
    if dash:
        lowest, highest = share(low), share(high)
        return round((lowest + highest) / 2, 4), lowest, highest
    target = share(text)
    return target, round(target - FILL_TOLERANCE, 4), round(target + FILL_TOLERANCE, 4)


def _cap(text: str, where: str) -> int:
    match = _CAP.fullmatch(text.strip().lower().replace(" ", ""))
    if match is None:
        raise InputRejected(f"{where}: cap {text!r} is not a size like 3MB, 500KB or 2000000.")
    return int(float(match[1]) * _CAP_UNITS[match[2] or "b"])
