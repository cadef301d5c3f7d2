"""Photos the fleet has already read: the digest of a file's bytes -> the digest and size of its pixels.

A cache key is a photo's decoded pixels, and every machine of a fleet walks the whole catalogue. Without
this, each machine decodes and hashes every photo, including the ones other machines produce (three in
four, on four machines): about 6 ms of CPU a 1024 px JPEG and 150 ms a 4K one, spent at the very moment
the machines race for the first photos. Here the first machine to reach a file marks it as being read,
decodes it and leaves what the key needs under the digest of the file's bytes; the others hash the bytes
(2 ms for a 4K JPEG) and read that instead. A file another machine is reading at that moment is set
aside like a claimed input and come back to.

Nothing here decides money: a key computed from a remembered digest is the key that machine computed, so
every machine of the fleet looks for (and claims) the same result. A machine that must produce the
result after all decodes the file then, and keeps that key only if the file's bytes are still the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..money.claims import ClaimHeld
from .store import SharedStore

READING_TTL_S = 30.0  # a reader that died mid-read holds the others back this long at most
_READING = "reading"
# Return what is known of the file; when nothing is, mark it as being read by the caller (nil back). A
# reading mark without an expiry, or with more time left than a mark's whole lifetime (ARGV[2]), was not
# written by this pack and would hold the photo back for ever: the caller takes it over (1 back).
_LOOK = """
local value = redis.call('GET', KEYS[1])
if value and value ~= ARGV[1] then return value end
if value then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl >= 0 and ttl <= tonumber(ARGV[2]) then return value end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if value then return 1 end
return false
"""
# The one form `KnownPixels.encode` writes, read whole: ASCII digits only (str.isdigit also accepts "²",
# which int() refuses) and at most six of them (a width of 5,000 digits is past int()'s own limit).
_KNOWN = re.compile(r"pixels ([0-9a-f]{64}) ([1-9][0-9]{0,5}) ([1-9][0-9]{0,5})")
_FORGET = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


@dataclass(frozen=True)
class KnownPixels:
    """What a cache key needs of a photo: its pixel digest (`images.pixel_digest`) and its size."""

    digest: str
    width: int
    height: int

    def encode(self) -> str:
        return f"pixels {self.digest} {self.width} {self.height}"

    @classmethod
    def decode(cls, text: str) -> KnownPixels | None:
        """The pixels `encode` wrote, or None for anything else (another version, damage, a hand edit)."""
        match = _KNOWN.fullmatch(text)
        if match is None:
            return None
        return cls(match[1], int(match[2]), int(match[3]))


class SharedInputs:
    def __init__(self, store: SharedStore) -> None:
        self.store = store

    def _key(self, file_digest: str) -> str:
        return self.store.key("input", file_digest)

    def look(self, file_digest: str) -> KnownPixels | None:
        """The file's known pixels, or None when this caller is to read it (it now holds the reading mark,
        or the store is down). Raises `ClaimHeld("machine")` while another machine reads the file."""
        key, ttl_ms = self._key(file_digest), int(READING_TTL_S * 1000)
        value: Any = self.store.call(lambda redis: redis.eval(_LOOK, 1, key, _READING, ttl_ms), None,
                                     what="looking up a photo's pixels")
        if value is None:
            return None
        if value == 1:
            self.store.warn_foreign(key, f"a reading mark with more than {READING_TTL_S:.0f} s left or none at all, "
                                    "which this pack never writes; taken over: this machine reads the photo")
            return None
        text = value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)
        if text == _READING:
            raise ClaimHeld("machine")
        known = KnownPixels.decode(text)
        if known is None:
            self.store.warn_foreign(key, "not a photo's pixel digest this version wrote")
        return known

    def remember(self, file_digest: str, known: KnownPixels) -> None:
        """Leave the pixels for the others (in place of the reading mark), for as long as results are kept."""
        key, ttl_ms = self._key(file_digest), int(self.store.result_ttl_s * 1000)
        self.store.call(lambda redis: redis.set(key, known.encode(), px=ttl_ms), None, what="sharing a photo's pixels")

    def forget(self, file_digest: str) -> None:
        """Drop this caller's reading mark after a failed read, so another machine reads it (and says why)."""
        key = self._key(file_digest)
        self.store.call(lambda redis: redis.eval(_FORGET, 1, key, _READING), None, what="releasing a photo")
