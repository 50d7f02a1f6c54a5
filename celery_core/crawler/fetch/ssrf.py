"""Which addresses the crawler may connect to, checked on the address actually dialled.

A URL found on a web page must not make the crawler reach into the user's own network
(router admin pages, a local Redis, cloud metadata endpoints). Hostnames are not trusted:
the check runs in the socket factory of the HTTP connector, so it sees the IP that DNS
returned at connect time (no DNS-rebinding gap), for the first request and for every
redirect alike. IP literals in URLs are also refused up front, with a clear reason.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohappyeyeballs import AddrInfoType

from celery_core.crawler.types import FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = ("http", "https")

# Not covered by the `is_private`/`is_reserved`/... flags of every Python version.
_EXTRA_BLOCKED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # carrier-grade NAT
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "169.254.0.0/16",  # link-local, incl. 169.254.169.254 metadata
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "64:ff9b:1::/48",  # local-use NAT64
        "2001:db8::/32",  # documentation
    )
)


class BlockedAddressError(OSError):
    """Raised by the socket factory; an OSError so the connector reports it like a refusal."""

    # One message for every address, so happy-eyeballs keeps this error (instead of merging
    # several different ones into a plain OSError) when all of a host's addresses are blocked.
    def __init__(self, address: str) -> None:
        super().__init__("address refused by the private-network guard")
        self.address = address


class AddressPolicy:
    """Decides whether an IP address may be contacted.

    `allow_private=True` allows everything. `allowed` networks are let through even when
    private (e.g. a configured proxy on localhost), `blocked` networks are refused even when
    public; `allowed` wins over `blocked`.
    """

    def __init__(
        self,
        allow_private: bool = False,
        allowed: Iterable[IPNetwork | str] = (),
        blocked: Iterable[IPNetwork | str] = (),
    ) -> None:
        self.allow_private = allow_private
        self.allowed = tuple(ipaddress.ip_network(n) for n in allowed)
        self.blocked = tuple(ipaddress.ip_network(n) for n in blocked)

    def refusal(self, address: str) -> str | None:
        """None when `address` may be contacted, else a short reason."""
        try:
            ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return "not an IP address"
        if isinstance(ip, ipaddress.IPv6Address):
            mapped = ip.ipv4_mapped or ip.sixtofour
            if mapped is not None:
                ip = mapped
        if any(ip in net for net in self.allowed):
            return None
        if any(ip in net for net in self.blocked):
            return "blocked network"
        if self.allow_private:
            return None
        return _special_use(ip)

    def allows(self, address: str) -> bool:
        return self.refusal(address) is None

    def socket_factory(self, addr_info: AddrInfoType) -> socket.socket:
        """For `aiohttp.TCPConnector(socket_factory=...)`: refuses before connecting."""
        family, type_, proto, _, sockaddr = addr_info
        address = str(sockaddr[0])
        if self.refusal(address) is not None:
            raise BlockedAddressError(address)
        return socket.socket(family=family, type=type_, proto=proto)


def _special_use(ip: IPAddress) -> str | None:
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_multicast:
        return "multicast address"
    if ip.is_unspecified:
        return "unspecified address"
    if any(ip in net for net in _EXTRA_BLOCKED if net.version == ip.version):
        return "special-use address"
    if ip.is_private:
        return "private address"
    if ip.is_reserved:
        return "reserved address"
    if not ip.is_global:
        return "non-global address"
    return None


def check_url(url: str, policy: AddressPolicy) -> str:
    """Refuse non-HTTP schemes and URLs whose host is a refused IP literal; return the host."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError as exc:
        raise FetchError("bad_url", str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise FetchError("bad_scheme", f"{scheme or 'no'} scheme; only http and https")
    if not host:
        raise FetchError("bad_url", "no host")
    if _is_ip_literal(host):
        reason = policy.refusal(host)
        if reason is not None:
            raise FetchError("private_address", f"{host}: {reason}")
    return host


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


async def check_resolved(host: str, port: int, policy: AddressPolicy) -> None:
    """Resolve `host` and refuse it if any address is refused (used when a proxy connects)."""
    import asyncio

    if _is_ip_literal(host):
        return
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise FetchError("dns_error", f"{host}: {exc}", transient=True) from None
    for info in infos:
        address = str(info[4][0])
        reason = policy.refusal(address)
        if reason is not None:
            raise FetchError("private_address", f"{host} -> {address}: {reason}")
