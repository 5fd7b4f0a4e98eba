"""
Who is asking: the client address that throttling counts against.

The socket peer is the client unless it is one of ``CHAT_TRUSTED_PROXIES``.
Behind trusted proxies the client is the right-most ``X-Forwarded-For`` entry
that is not itself a trusted proxy: entries to its left were written by the
client and prove nothing, so a client cannot choose the address it is counted
under by sending its own header.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# An IPv6 host usually owns a whole /64; counting single addresses would let it
# rotate through 2**64 of them.
IPV6_CLIENT_PREFIX = 64


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def _parse(value: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    # An IPv4 peer seen through an IPv6 socket is still that IPv4 client.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address in network for network in networks)


def client_address(request: HttpRequest) -> str:
    """The address of the client that sent ``request``, as the throttle counts it."""
    networks = _networks(tuple(settings.CHAT["TRUSTED_PROXIES"]))
    peer_text = request.META.get("REMOTE_ADDR", "")
    peer = _parse(peer_text)
    # A peer that is not an IP address is a Unix socket: only a process on this
    # host (the reverse proxy) can be there, so it is trusted like a listed proxy.
    peer_trusted = peer is None or _is_trusted(peer, networks)
    if not peer_trusted:
        return _client_key(peer)

    client = peer
    for entry in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        hop = _parse(entry)
        if hop is None:
            # A trusted proxy never writes a malformed entry, so whatever is left
            # of it came from the client; the last hop we could vouch for stands.
            break
        client = hop
        if not _is_trusted(hop, networks):
            break
    if client is None:
        return f"socket:{peer_text or 'unix'}"[:64]
    return _client_key(client)


def _client_key(address: IPAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(address)
