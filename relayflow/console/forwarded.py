"""Where a request came from, and whether over TLS: the socket's, or a trusted proxy's word.

A connection from an address in ``RELAYFLOW_CONSOLE_TRUSTED_PROXIES`` (a
reverse proxy in front of the console) may say who its client is
(``X-Forwarded-For``) and whether the client spoke TLS
(``X-Forwarded-Proto``); from anywhere else those headers are ignored.
Proxies append to ``X-Forwarded-For``, so the client is the last address
that is not a trusted proxy: the entries left of it are the client's own
word. Of ``X-Forwarded-Proto`` the last value counts, the one the proxy
next to the console added.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import Scope

from relayflow.config.networks import address_in
from relayflow.config.settings import Settings

__all__ = ["client_address", "is_https"]


def _peer(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _from_trusted_proxy(scope: Scope, settings: Settings) -> bool:
    return address_in(_peer(scope), settings.console_trusted_networks)


def client_address(scope: Scope, settings: Settings) -> str:
    """The client's address: the socket's peer, or what a trusted proxy says it is."""
    peer = _peer(scope) or "unknown"
    if not _from_trusted_proxy(scope, settings):
        return peer
    hops = [hop.strip() for value in Headers(scope=scope).getlist("x-forwarded-for")
            for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not address_in(hop, settings.console_trusted_networks):
            return hop[:64]
    return hops[0][:64] if hops else peer


def is_https(scope: Scope, settings: Settings) -> bool:
    """The client spoke TLS: to the console itself, or to the trusted proxy in front of it."""
    if scope.get("scheme") in {"https", "wss"}:
        return True
    if not _from_trusted_proxy(scope, settings):
        return False
    said = [p.strip().lower() for value in Headers(scope=scope).getlist("x-forwarded-proto")
            for p in value.split(",") if p.strip()]
    return bool(said) and said[-1] == "https"
