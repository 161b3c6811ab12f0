"""Lists of IP addresses and networks, and whether an address is in one.

``RELAYFLOW_CONSOLE_TRUSTED_PROXIES`` is such a list: the console trusts an
identity header only from a connection whose peer is in it.
"""

from __future__ import annotations

import ipaddress

__all__ = ["Network", "address_in", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
"""One entry of a list: a single address is a network of one (``/32``, ``/128``)."""


def parse_networks(text: str) -> tuple[Network, ...]:
    """The addresses and CIDR networks of a comma-separated list.

    Args:
        text: Such as ``127.0.0.1,::1,10.0.0.0/8,fd00::/8``.

    Returns:
        One network per entry, in order.

    Raises:
        ValueError: The list is empty, or an entry is no address or network
            (a network with host bits set, ``10.0.0.1/8``, counts as a typo).
    """
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries:
        raise ValueError("no addresses (give the reverse proxy's, e.g. 127.0.0.1,::1)")
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError as error:
            raise ValueError(f"{entry[:64]!r} is no IP address or CIDR network ({error})",
                             ) from None
    return tuple(networks)


def address_in(host: str | None, networks: tuple[Network, ...]) -> bool:
    """Whether ``host`` (an IP address as text) is in one of ``networks``.

    An IPv4 address a dual-stack socket reports as IPv6 (``::ffff:10.1.2.3``)
    is checked as the IPv4 address. Anything that is no IP address (None, a
    host name, a Unix socket's path) is in none.
    """
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)
