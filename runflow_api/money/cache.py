"""Results on disk, addressed by what was asked: the input's pixels and every parameter of the run.

The key hashes decoded pixels, not encoded bytes, so re-saving a photo or passing the same tensor again
is still a hit. It also holds the service, so emulator results never stand in for paid ones. Each entry
is one file: a header with the metadata and a checksum of the image(s), then the image bytes, written
atomically (`pack_entry` / `unpack_entry` are the only code that knows the layout; a shared store keeps
the same blobs). A reader can therefore never see half an entry, and a truncated or corrupt file (a crash, a
full disk, a hand edit) is detected and treated as a miss. The cache can only ever cost a re-run: every
failure in it is logged once and otherwise ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..product_isolation import plausible_cost
from ..settings.fsutil import atomic_write

log = logging.getLogger("runflow_api")

SCHEMA = "runflow-cache-v1"
_MAGIC = b"RFC1"  # one image: magic, metadata length, sha256 of the image, metadata, image
_MAGIC_MANY = b"RFC2"  # several: the same, the sha256 over all images, then each image's length (>I) first
_HEADER = struct.Struct(">4sI32s")  # magic, metadata length, sha256 of the image bytes
_LENGTH = struct.Struct(">I")
MAX_IMAGES = 64
_RESCAN_EVERY = 200
# Process-wide, not per cache object: the nodes build a client per execution, and an entry whose
# metadata is malformed stays (its image is good), so a per-object memory would warn on every queue.
_MALFORMED_WARNED: set[str] = set()
_MALFORMED_LOCK = threading.Lock()


def cache_key(*, pixel_digest: str, model: str, service_id: str, options: Mapping[str, Any]) -> str:
    """The sha256 of everything that decides the result; the schema version retires old entries.
    `options` is the request's own part, `IsolationParams.key_fields()`."""
    fields = {"schema": SCHEMA, "pixels": pixel_digest, "model": model, "service": service_id, **options}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedResult:
    """A stored result: the first image's bytes, the metadata, and any further images of the same run."""

    image_bytes: bytes
    meta: dict[str, Any]
    more_images: tuple[bytes, ...] = ()

    @property
    def all_images(self) -> tuple[bytes, ...]:
        return (self.image_bytes, *self.more_images)


def pack_entry(images: Sequence[bytes], meta: dict[str, Any]) -> bytes:
    """The stored form of a result: every image of the run, whole, with its metadata and a checksum.

    A single image keeps the original `RFC1` layout byte for byte, so entries written before runs could
    return several images, and by older versions of the pack, read both ways."""
    if not images or len(images) > MAX_IMAGES or not all(images):
        raise ValueError(f"a cache entry holds 1..{MAX_IMAGES} non-empty images, got {len(images)}")
    encoded_meta = json.dumps(meta, default=str).encode("utf-8")
    if len(images) == 1:
        return _HEADER.pack(_MAGIC, len(encoded_meta), hashlib.sha256(images[0]).digest()) + encoded_meta + images[0]
    lengths = _LENGTH.pack(len(images)) + b"".join(_LENGTH.pack(len(image)) for image in images)
    body = lengths + b"".join(images)
    return _HEADER.pack(_MAGIC_MANY, len(encoded_meta), hashlib.sha256(body).digest()) + encoded_meta + body


def unpack_entry(blob: bytes) -> CachedResult | None:
    """The result `pack_entry` stored, or None for anything truncated, corrupt or foreign."""
    if len(blob) < _HEADER.size:
        return None
    magic, meta_length, digest = _HEADER.unpack_from(blob)
    meta_end = _HEADER.size + meta_length
    if magic not in (_MAGIC, _MAGIC_MANY) or meta_end > len(blob):
        return None
    body = blob[meta_end:]
    if not body or hashlib.sha256(body).digest() != digest:
        return None
    try:
        meta = json.loads(blob[_HEADER.size:meta_end])
    except ValueError:
        return None
    if not isinstance(meta, dict):
        return None
    images = [body] if magic == _MAGIC else _split_images(body)
    if not images:
        return None
    return CachedResult(images[0], meta, tuple(images[1:]))


def _split_images(body: bytes) -> list[bytes]:
    """The images of an `RFC2` body, or [] when its lengths do not add up."""
    if len(body) < _LENGTH.size:
        return []
    (count,) = _LENGTH.unpack_from(body)
    offset = _LENGTH.size * (1 + count)
    if not 2 <= count <= MAX_IMAGES or offset > len(body):
        return []
    lengths = [_LENGTH.unpack_from(body, _LENGTH.size * (1 + n))[0] for n in range(count)]
    if offset + sum(lengths) != len(body) or 0 in lengths:
        return []
    images = []
    for length in lengths:
        images.append(body[offset:offset + length])
        offset += length
    return images


def stored_facts(key: str, meta: dict[str, Any]) -> tuple[str | None, Decimal | None, str | None]:
    """(run id, cost, output URL) from an entry's metadata, each None when malformed.

    The image itself is checksummed and decoded, so a hand-edited or foreign metadata field only loses
    that fact (with one warning), never the paid result: treating the entry as a miss would pay again."""
    run_id, output_url, raw_cost = meta.get("run_id"), meta.get("output_url"), meta.get("cost")
    clean_run_id = run_id if isinstance(run_id, str) else None
    clean_url = output_url if isinstance(output_url, str) else None
    cost = plausible_cost(raw_cost)
    damaged = (clean_run_id, clean_url) != (run_id, output_url) or (cost is None) != (raw_cost is None)
    with _MALFORMED_LOCK:
        first = damaged and key not in _MALFORMED_WARNED
        if first:
            _MALFORMED_WARNED.add(key)
    if first:
        log.warning("Result cache: entry %s has malformed metadata; its run id or cost is not shown.", key[:16])
    return clean_run_id, cost, clean_url


class ResultCache:
    """A bounded, least-recently-used store of result images, safe to share between processes."""

    def __init__(self, directory: Path, max_bytes: int = 2 * 1024**3) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._total: int | None = None
        self._puts = 0
        self._warned: set[str] = set()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.rfc"

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        log.warning(message, *args)

    def contains(self, key: str) -> bool:
        """A cheap existence check for planning (no read, no checksum)."""
        return self._path(key).is_file()

    def get(self, key: str) -> CachedResult | None:
        path = self._path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn_once(key, "Result cache: cannot read %s (%s); treating it as a miss.", path, exc)
            return None
        entry = unpack_entry(blob)
        if entry is None:
            self._warn_once(key, "Result cache: %s is damaged (truncated or corrupt); it will be fetched again.", path)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recency for least-recently-used eviction
        return entry

    def put(self, key: str, images: bytes | Sequence[bytes], meta: dict[str, Any]) -> None:
        """Store every image of a result atomically; a failure (disk full, permissions) is a warning,
        never an exception."""
        self.put_blob(key, pack_entry([images] if isinstance(images, bytes) else images, meta))

    def put_blob(self, key: str, blob: bytes) -> None:
        """Store an entry already packed (by `pack_entry`, here or on another machine of the fleet)."""
        path = self._path(key)
        try:
            atomic_write(path, blob, durable=False)
        except OSError as exc:
            self._warn_once("put", "Result cache: cannot write to %s (%s); results will not be cached.", path, exc)
            return
        self._account(len(blob))

    def _account(self, added: int) -> None:
        with self._lock:
            self._puts += 1
            if self._total is None or self._puts % _RESCAN_EVERY == 0:
                self._total = None  # rescan: other processes write here too
            else:
                self._total += added
            total = self._total
        if total is None:
            total = sum(size for _, size, _ in self._entries())
            with self._lock:
                self._total = total
        if total > self.max_bytes:
            self._evict()

    def _entries(self) -> list[tuple[float, int, Path]]:
        found = []
        for path in self.directory.glob("??/*.rfc"):
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((stat.st_mtime, stat.st_size, path))
        return found

    def _evict(self) -> None:
        """Drop least-recently-used entries until the cache is under 90% of its bound."""
        entries = sorted(self._entries())
        total = sum(size for _, size, _ in entries)
        target = int(self.max_bytes * 0.9)
        for _, size, path in entries:
            if total <= target:
                break
            with contextlib.suppress(OSError):  # another process evicted it first
                path.unlink()
            total -= size
        with self._lock:
            self._total = total

    def stats(self) -> tuple[int, int]:
        """(entries, bytes)."""
        entries = self._entries()
        return len(entries), sum(size for _, size, _ in entries)

    def clear(self) -> None:
        for _, _, path in self._entries():
            with contextlib.suppress(OSError):
                path.unlink()
        with self._lock:
            self._total = 0
