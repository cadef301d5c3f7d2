"""Colour for the tests, written out independently of LittleCMS: ICC profiles built from primaries, and
sRGB / Display P3 / Adobe RGB numbers to CIE Lab, for ΔE76.

Pillow can only create sRGB, Lab and XYZ profiles, and nothing is downloaded, so the Display P3 and
Adobe RGB profiles of the tests are written here byte by byte: an ICC v2 matrix/TRC display profile
(header, tag table, desc, wtpt, rXYZ/gXYZ/bXYZ colorants adapted to D50 by Bradford, the tone curves as
`para` curves). The Lab maths uses the spaces' published primaries and curves, so a test comparing the
pack's output with it checks the whole chain, LittleCMS included, against the definitions.
"""

from __future__ import annotations

import struct

import numpy as np

D65 = (0.3127, 0.3290)
D50_XYZ = np.array([0.9642, 1.0, 0.8249])
D65_XYZ = np.array([0.95047, 1.0, 1.08883])
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])

# name -> (primaries r, g, b as xy, transfer): "srgb" is the piecewise sRGB curve, a float a pure gamma.
SPACES: dict[str, tuple[tuple[tuple[float, float], ...], str | float]] = {
    "srgb": (((0.640, 0.330), (0.300, 0.600), (0.150, 0.060)), "srgb"),
    "display-p3": (((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), "srgb"),
    "adobe-rgb": (((0.640, 0.330), (0.210, 0.710), (0.150, 0.060)), 563 / 256),
}


def _xyz(xy: tuple[float, float]) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def rgb_to_xyz_matrix(space: str) -> np.ndarray:
    """The 3x3 matrix from linear RGB to XYZ (D65) of a space."""
    primaries, _ = SPACES[space]
    columns = np.stack([_xyz(p) for p in primaries], axis=1)
    scale = np.linalg.solve(columns, _xyz(D65))
    return columns * scale


def _linear(values: np.ndarray, transfer: str | float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64) / 255.0
    if transfer == "srgb":
        return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return v ** float(transfer)


def lab(rgb: np.ndarray | tuple[int, int, int], space: str = "srgb") -> np.ndarray:
    """CIE Lab (D65 white) of 8-bit RGB numbers in `space`; any leading shape, last axis 3."""
    _, transfer = SPACES[space]
    xyz = _linear(np.asarray(rgb), transfer) @ rgb_to_xyz_matrix(space).T
    ratio = xyz / D65_XYZ
    f = np.where(ratio > (6 / 29) ** 3, np.cbrt(ratio), ratio / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def delta_e76(first: np.ndarray, second: np.ndarray) -> float:
    """Euclidean distance of two Lab colours."""
    return float(np.linalg.norm(np.asarray(first) - np.asarray(second)))


def _adapt_to_d50(xyz: np.ndarray) -> np.ndarray:
    cone = _BRADFORD @ D50_XYZ / (_BRADFORD @ D65_XYZ)
    return np.linalg.inv(_BRADFORD) @ np.diag(cone) @ _BRADFORD @ xyz


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(xyz: np.ndarray) -> bytes:
    return b"XYZ " + b"\0" * 4 + b"".join(_s15(v) for v in xyz)


def _curve_tag(transfer: str | float) -> bytes:
    if transfer == "srgb":  # parametric type 3: Y = (aX+b)^g for X >= d, else cX
        params = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
        return b"para" + b"\0" * 4 + struct.pack(">HH", 3, 0) + b"".join(_s15(p) for p in params)
    return b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(float(transfer) * 256)) + b"\0\0"


def _text_tag(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return b"desc" + b"\0" * 4 + struct.pack(">I", len(ascii_text)) + ascii_text + b"\0" * (4 + 4 + 2 + 1 + 67)


def icc_profile(space: str, description: str | None = None) -> bytes:
    """An ICC v2 RGB display profile of `space`, as a camera or an editor would embed it."""
    matrix = rgb_to_xyz_matrix(space)
    _, transfer = SPACES[space]
    curve = _curve_tag(transfer)
    tags = [
        (b"desc", _text_tag(description or space)),
        (b"cprt", b"text" + b"\0" * 4 + b"made by the tests\0"),
        (b"wtpt", _xyz_tag(D50_XYZ)),
        (b"rXYZ", _xyz_tag(_adapt_to_d50(matrix[:, 0]))),
        (b"gXYZ", _xyz_tag(_adapt_to_d50(matrix[:, 1]))),
        (b"bXYZ", _xyz_tag(_adapt_to_d50(matrix[:, 2]))),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        padded = data + b"\0" * (-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += padded
    size = offset + len(body)
    header = (
        struct.pack(">I", size) + b"none" + bytes([2, 0x40, 0, 0]) + b"mntr" + b"RGB " + b"XYZ "
        + b"\0" * 12 + b"acsp" + b"\0" * 4 + b"\0" * 4 + b"\0" * 8 + b"\0" * 8 + struct.pack(">I", 0)
        + b"".join(_s15(v) for v in D50_XYZ) + b"\0" * 4 + b"\0" * 16 + b"\0" * 28
    )
    assert len(header) == 128, len(header)
    return header + struct.pack(">I", len(tags)) + table + body
