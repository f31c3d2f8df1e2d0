"""Where webhooks may be sent: public addresses only, unless the operator allows the service's own networks.

A webhook URL is chosen by an organisation's admin, and the service POSTs to it from inside the operator's
network: without a check, a URL naming ``127.0.0.1``, ``169.254.169.254`` or an intranet host turns the service
into a probe of that network (server-side request forgery). So a target is refused when any address it names or
resolves to is loopback, private, link-local, multicast, reserved or unspecified, in IPv4 or IPv6 (an IPv4 address
inside an IPv6 one is judged as the IPv4 address). The check runs at registration and again before every
delivery, after resolving the name, and the delivery connects to the very address that was checked: a name whose
DNS answer changes between the check and the connection cannot slip past (DNS rebinding). The HTTP ``Host``
header and the TLS server name stay the URL's own, so virtual hosts and certificates work as before.

``COLDCHAIN_WEBHOOK_ALLOW_PRIVATE`` lifts the address rule for receivers on the operator's own network.
Credentials in the URL (``user:password@``) are always refused: the signature authenticates the service, and
a password in a URL ends up in logs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import msgspec

from coldchain.services.errors import Invalid

__all__ = [
    "REFUSED_TARGET",
    "Resolver",
    "Target",
    "TargetRefused",
    "address_refusal",
    "check_url",
    "resolve",
    "resolve_target",
]

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""The addresses a host name resolves to for a port (IP literals resolve to themselves)."""

REFUSED_TARGET = (
    "refused: the target's address is not public (loopback, private, link-local, multicast, reserved or"
    " unspecified); an on-premise receiver needs COLDCHAIN_WEBHOOK_ALLOW_PRIVATE"
)
"""What the delivery log says of a refused target: nothing about the address or what listens there."""

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The target resolves to an address webhooks may not reach."""


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook URL resolved to the addresses to connect to, every one of them checked."""

    url: str
    host: str
    """The URL's host name: the TLS server name and, with the port, the ``Host`` header."""
    host_header: str
    addresses: list[str]


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the resolver's order, each once."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # an IPv6 zone ("fe80::1%eth0") is no part of the address
        if address not in addresses:
            addresses.append(address)
    return addresses


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def address_refusal(text: str) -> str | None:
    """Why webhooks may not reach the address ``text``, or ``None`` when it is a public unicast address."""
    address: IpAddress = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_refusal(str(embedded))
    for kind, is_kind in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not globally routable", not address.is_global),
    ):
        if is_kind:
            return kind
    return None


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _is_local_name(host: str) -> bool:
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")  # RFC 6761 §6.3: always the loopback


def check_url(url: str, *, allow_private: bool) -> str:
    """``url`` if it is an http(s) URL webhooks may use as written; :class:`Invalid` naming the problem otherwise.

    This looks at the URL alone; :func:`resolve_target` checks where its name leads.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise Invalid(f"url: expected an http:// or https:// URL, got {url!r}")
    if not parts.hostname:
        raise Invalid(f"url: no host in {url!r}")
    if parts.username is not None or parts.password is not None:
        raise Invalid("url: credentials in the URL are refused; receivers check the X-Coldchain-Signature instead")
    if parts.fragment:
        raise Invalid("url: a fragment (#...) is never sent; leave it out")
    try:
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        raise Invalid(f"url: bad port in {url!r}") from None
    if not allow_private:
        literal = _literal(parts.hostname)
        refusal = address_refusal(literal) if literal is not None else None
        if refusal is not None or _is_local_name(parts.hostname):
            raise Invalid(f"url: the host is {refusal or 'loopback'}; webhooks go to public addresses only")
    return url


async def resolve_target(url: str, *, allow_private: bool, resolver: Resolver = resolve) -> Target:
    """Resolve ``url``'s host and check every address it gives.

    Raises :class:`TargetRefused` when the URL or any address is refused, and ``OSError`` when the name does not
    resolve (the caller retries later).
    """
    try:
        check_url(url, allow_private=allow_private)
    except Invalid:
        raise TargetRefused(REFUSED_TARGET) from None
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await resolver(host, port)
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    if not allow_private and any(address_refusal(address) is not None for address in addresses):
        raise TargetRefused(REFUSED_TARGET)
    host_header = parts.netloc.rpartition("@")[2]
    return Target(url=url, host=host, host_header=host_header, addresses=addresses)
