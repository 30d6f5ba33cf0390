"""Which URLs evenhand may fetch (article URLs, webhook callbacks): the rules, without network.

The API applies them when a URL is submitted, so a URL that names a refused address is answered
with a 422 at once; the worker applies them again to every fetch and redirect, after resolving
host names (`worker.fetch`), because a name can resolve to anything.

A URL must be http(s), carry no userinfo, have a host that is not `localhost` (or a name under
it), and a numeric host, in any encoding `inet_aton` accepts (`127.1`, `2130706433`,
`0x7f000001`, `0177.0.0.1`) or IPv6, must be a public unicast address. IPv6 addresses that embed
an IPv4 address (IPv4-mapped, IPv4-compatible, 6to4, Teredo, NAT64 `64:ff9b::/96`) are judged by
the embedded address too. `allow_private` (development and tests) opens loopback and private
ranges, never cloud metadata, unspecified, multicast, link-local or reserved addresses.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")

# Refused even with allow_private: cloud instance metadata (AWS/GCP/Azure, AWS IPv6, Alibaba).
_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
# What allow_private opens up (tests reach a loopback server this way): loopback and private
# ranges only. Never metadata, unspecified, multicast, link-local or reserved addresses.
_PRIVATE_OK = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "::1/128",
        "fc00::/7",
    )
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPAT = ipaddress.ip_network("::/96")

_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")


class URLNotAllowed(ValueError):
    """A URL evenhand will not fetch; the message says why, in words."""


@dataclass(frozen=True)
class VettedURL:
    """A URL that passed every rule that needs no DNS."""

    url: httpx.URL
    host: str  # ASCII host (IDNA), as in the URL
    address: IPAddress | None  # the address the host *is*, if numeric; None for a host name


def vet_url(url: str | httpx.URL, *, allow_private: bool = False) -> VettedURL:
    """Check everything about `url` that needs no network; raise URLNotAllowed if it fails.

    A host name passes here: whoever connects must resolve it and judge every address with
    `address_problem`."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise URLNotAllowed("the URL is malformed") from exc
    if parsed.scheme not in ALLOWED_SCHEMES:
        shown = f"'{parsed.scheme}'" if parsed.scheme else "no scheme"
        raise URLNotAllowed(f"only http and https URLs are allowed (this one has {shown})")
    if parsed.userinfo:
        raise URLNotAllowed("credentials (user:pass@) in the URL are not allowed; leave them out")
    try:
        host = parsed.raw_host.decode("ascii")
    except UnicodeDecodeError as exc:  # pragma: no cover - httpx IDNA-encodes hosts
        raise URLNotAllowed("the host name is malformed") from exc
    if not host:
        raise URLNotAllowed("the URL has no host")
    bare = host.rstrip(".").lower()
    if bare == "localhost" or bare.endswith(".localhost"):  # whatever allow_private says
        raise URLNotAllowed(f"host {bare!r} is a loopback name")
    address = literal_address(host)
    if address is not None:
        problem = address_problem(address, allow_private)
        if problem is not None:
            raise URLNotAllowed(f"host {host!r} is {problem}")
    return VettedURL(url=parsed, host=host, address=address)


def literal_address(host: str) -> IPAddress | None:
    """The address a numeric host denotes, in every form `inet_aton` (and so getaddrinfo) takes:
    `127.0.0.1`, `127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`, a trailing dot, or IPv6.
    None for a host name. A host whose last label is numeric but is no valid address is refused,
    never resolved."""
    if ":" in host:  # httpx hands IPv6 literals over without brackets
        if "%" in host:
            raise URLNotAllowed("scoped IPv6 addresses are not allowed")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise URLNotAllowed("the IPv6 address is malformed") from exc
    bare = host[:-1] if host.endswith(".") else host
    labels = bare.split(".")
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None  # a host name
    value = _inet_aton(labels)
    if value is None:
        raise URLNotAllowed(f"host {host!r} is a malformed numeric address")
    return ipaddress.IPv4Address(value)


def _inet_aton(labels: list[str]) -> int | None:
    if not 1 <= len(labels) <= 4:
        return None
    parts = []
    for label in labels:
        try:
            if label[:2].lower() == "0x":
                parts.append(int(label[2:], 16))
            elif len(label) > 1 and label.startswith("0"):
                parts.append(int(label[1:], 8))
            else:
                parts.append(int(label, 10))
        except ValueError:
            return None
    *head, last = parts
    if any(p > 255 for p in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for p in head:
        value = value << 8 | p
    return value << 8 * (4 - len(head)) | last


def address_problem(address: IPAddress, allow_private: bool) -> str | None:
    """Why `address` may not be fetched from ("a private address"), or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded, judged_by_embedded = _embedded_ipv4(address)
        for inner in embedded:
            problem = address_problem(inner, allow_private)
            if problem is not None:
                return f"{problem} embedded in an IPv6 address"
        if embedded and judged_by_embedded:
            return None  # mapped / NAT64: the packets go to the (acceptable) IPv4 address
    if address in _METADATA:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if allow_private and any(address in net for net in _PRIVATE_OK):
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if address in _SHARED:
        return "a shared address space (100.64.0.0/10) address"
    if address.is_reserved:  # before is_private, which counts 240.0.0.0/4 among its ranges
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a non-global address"
    return None


def _embedded_ipv4(
    address: ipaddress.IPv6Address,
) -> tuple[list[ipaddress.IPv4Address], bool]:
    """IPv4 addresses inside an IPv6 one, and whether the IPv4 address alone decides (mapped and
    NAT64 addresses are just another spelling of it; 6to4, Teredo and IPv4-compatible addresses
    must pass the IPv6 checks as well)."""
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped], True
    if address in _NAT64:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)], True
    if address.sixtofour is not None:
        return [address.sixtofour], False
    if address.teredo is not None:
        return list(address.teredo), False
    if address in _IPV4_COMPAT and int(address) > 1:  # ::a.b.c.d (not :: or ::1)
        return [ipaddress.IPv4Address(int(address))], False
    return [], False
