"""Which address a request is counted under, with and without trusted proxies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import RequestFactory

from restapi.client_ip import client_address


def _request(remote_addr: str, forwarded_for: str | None = None) -> Any:
    extra = {"REMOTE_ADDR": remote_addr}
    if forwarded_for is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return RequestFactory().post("/chat", **extra)


@pytest.fixture
def proxies(chat_settings: Callable[..., None]) -> Callable[..., None]:
    def configure(*networks: str) -> None:
        chat_settings(TRUSTED_PROXIES=list(networks))

    return configure


def test_without_trusted_proxies_the_socket_peer_is_the_client(proxies: Callable[..., None]) -> None:
    proxies()
    assert client_address(_request("203.0.113.9")) == "203.0.113.9"
    # A client cannot pick the address it is counted under.
    assert client_address(_request("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


def test_an_untrusted_peer_is_the_client_even_when_proxies_are_configured(proxies: Callable[..., None]) -> None:
    proxies("10.0.0.0/8")
    assert client_address(_request("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


def test_behind_a_trusted_proxy_the_right_most_untrusted_forwarded_address_is_the_client(
    proxies: Callable[..., None],
) -> None:
    proxies("10.0.0.0/8")
    # The client claimed 1.2.3.4; the proxy appended the address it really saw.
    assert client_address(_request("10.0.0.5", "1.2.3.4, 198.51.100.7")) == "198.51.100.7"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right(proxies: Callable[..., None]) -> None:
    proxies("10.0.0.0/8", "192.168.1.1")
    forwarded = "6.6.6.6, 198.51.100.7, 192.168.1.1, 10.1.2.3"
    assert client_address(_request("10.0.0.5", forwarded)) == "198.51.100.7"


def test_when_every_hop_is_trusted_the_farthest_hop_is_the_client(proxies: Callable[..., None]) -> None:
    proxies("10.0.0.0/8")
    assert client_address(_request("10.0.0.5", "10.9.9.9, 10.0.0.6")) == "10.9.9.9"
    assert client_address(_request("10.0.0.5")) == "10.0.0.5"


def test_a_malformed_forwarded_entry_stops_the_walk(proxies: Callable[..., None]) -> None:
    proxies("10.0.0.0/8")
    assert client_address(_request("10.0.0.5", "198.51.100.7, not-an-ip, 10.0.0.6")) == "10.0.0.6"
    assert client_address(_request("10.0.0.5", "<script>")) == "10.0.0.5"


def test_ipv6_clients_are_counted_per_64_prefix(proxies: Callable[..., None]) -> None:
    proxies()
    first = client_address(_request("2001:db8:1:2::1"))
    assert first == "2001:db8:1:2::/64"
    assert client_address(_request("2001:db8:1:2:ffff::9")) == first
    assert client_address(_request("2001:db8:1:3::1")) != first


def test_an_ipv4_mapped_peer_is_its_ipv4_address(proxies: Callable[..., None]) -> None:
    proxies()
    assert client_address(_request("::ffff:203.0.113.9")) == "203.0.113.9"


def test_a_unix_socket_peer_is_a_local_proxy(proxies: Callable[..., None]) -> None:
    proxies()
    # gunicorn bound to a Unix socket reports an empty REMOTE_ADDR.
    assert client_address(_request("", "6.6.6.6, 198.51.100.7")) == "198.51.100.7"
    assert client_address(_request("")) == "socket:unix"
