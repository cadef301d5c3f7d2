"""Which URLs handed out by the service may be fetched: the rule, no I/O.

Presigned upload URLs, output URLs and every redirect hop pass `external_url_refusal` before the
transport (`http.py`) connects anywhere, so a compromised or misconfigured answer cannot steer the
client at this machine or its network. The rule is pure (no DNS, no sockets): the reasons are in
`external_url_refusal`'s docstring.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_loopback_url(url: str) -> bool:
    """True for URLs on this machine (127.0.0.0/8, ::1, localhost): the only place plain http is allowed.
    Part of the rule both sides keep (the client's base URL, the emulator's callback URLs)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _literal_address(host: str) -> _Address | None:
    """The IP address a host names literally, or None for a host name.

    Besides the standard forms this reads the legacy IPv4 spellings the system resolver accepts
    without any DNS lookup (`127.1`, `2130706433`, `0x7f.0.0.1`), which would otherwise pass for names."""
    try:
        address: _Address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, ValueError):
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _internal_kind(host: str) -> str | None:
    """What makes `host` internal ("loopback", "link-local", ...), or None for a public address or a name."""
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return "loopback"
    address = _literal_address(name)
    if address is None:
        return None
    for kind, flag in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("private", address.is_private),
        ("multicast", address.is_multicast),
    ):
        if flag:
            return kind
    return None if address.is_global else "non-public"


def _same_origin(a: SplitResult, b: SplitResult) -> bool:
    """Same scheme, host and port: the service's own address, which already receives the key."""
    try:
        return a.scheme == b.scheme and a.hostname == b.hostname and a.port == b.port
    except ValueError:  # a malformed port in the base URL: then nothing is its origin
        return False


def external_url_refusal(url: str, *, base_url: str, allow_insecure: bool = False) -> str | None:
    """Why a URL the service handed out (presigned upload, output, redirect target) must not be fetched;
    None when it may be.

    - Against the emulator (a loopback `base_url`): only URLs on this machine, http or https. The
      emulator signs URLs on itself, so anything else is a bug or a hostile answer.
    - Against a real service: only https (plain http too when `allow_insecure`, an explicit test
      switch) to public hosts. Loopback, link-local (cloud metadata at 169.254.169.254), private,
      multicast and other non-public IP literals are refused, as is the name `localhost`; URLs on the
      service's own origin are allowed, since the key already goes there.
    - Host names are not resolved: a DNS answer checked here may differ from the one used to connect
      (DNS rebinding), so a check on resolved addresses would promise more than it keeps and costs a
      lookup per URL. The URLs come from the service over an authenticated TLS connection; the check
      stops a compromised or misconfigured answer from steering the client at this machine or its
      network by address, which is how such URLs are usually written.
    """
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return "it is not a valid URL"
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("http", "https") or not host:
        return "it is not an http(s) URL"
    base = urlsplit(base_url)
    if is_loopback_url(base_url):
        if _internal_kind(host) == "loopback":
            return None
        return "the local emulator only hands out URLs on this machine, and this one points elsewhere"
    if scheme != "https" and not allow_insecure:
        return "it is a non-https URL, and only https is used with the real service"
    if _same_origin(parts, base):
        return None
    kind = _internal_kind(host)
    if kind is not None:
        return f"it points at a {kind} address, which is never fetched when working with the real service"
    return None

