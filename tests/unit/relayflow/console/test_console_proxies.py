"""RELAYFLOW_CONSOLE_TRUSTED_PROXIES: parsing the list, and whose address is in it."""

from __future__ import annotations

import ipaddress

import pytest
from typer.testing import CliRunner

from relayflow.cli.main import app
from relayflow.config.networks import address_in, parse_networks
from relayflow.config.settings import SettingError, Settings, load_settings

SETTING = "RELAYFLOW_CONSOLE_TRUSTED_PROXIES"


def test_the_list_holds_addresses_and_networks_of_both_families() -> None:
    assert parse_networks(" 192.0.2.7, 10.0.0.0/8 ,::1,fd00::/8,") == (
        ipaddress.ip_network("192.0.2.7/32"), ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"), ipaddress.ip_network("fd00::/8"))


def test_by_default_only_loopback_is_trusted() -> None:
    networks = Settings().console_trusted_networks
    assert address_in("127.0.0.1", networks)
    assert address_in("::1", networks)
    assert not address_in("127.0.0.2", networks)
    assert not address_in("10.0.0.1", networks)


@pytest.mark.parametrize(("host", "trusted"), [
    ("192.0.2.7", True), ("192.0.2.8", False),
    ("10.0.0.0", True), ("10.255.255.255", True), ("11.0.0.1", False),
    ("fd00::1", True), ("fd12:3456::9", True), ("fe80::1", False),
    ("::1", True), ("::2", False),
    # What a dual-stack socket reports for an IPv4 peer is checked as that IPv4 address.
    ("::ffff:10.1.2.3", True), ("::ffff:11.1.2.3", False),
    # No IP address at all (no peer, a name, a Unix socket) is never trusted.
    (None, False), ("testclient", False), ("", False), ("/run/console.sock", False),
])
def test_an_address_is_trusted_when_in_an_entry(host: str | None, trusted: bool) -> None:
    networks = parse_networks("192.0.2.7,10.0.0.0/8,fd00::/8,::1")
    assert address_in(host, networks) is trusted


def test_an_ipv4_address_is_not_in_an_ipv6_network_and_back() -> None:
    assert not address_in("10.0.0.1", parse_networks("::/0"))
    assert not address_in("fd00::1", parse_networks("0.0.0.0/0"))
    assert address_in("203.0.113.9", parse_networks("0.0.0.0/0"))


@pytest.mark.parametrize(("value", "problem"), [
    ("", "no addresses"),
    (" , ", "no addresses"),
    ("localhost", "'localhost' is no IP address or CIDR network"),
    ("127.0.0.1,proxy.internal", "'proxy.internal' is no IP address"),
    ("10.0.0.1/8", "has host bits set"),
    ("10.0.0.0/33", "'10.0.0.0/33' is no IP address"),
    ("fd00::/129", "'fd00::/129' is no IP address"),
    ("1.2.3", "'1.2.3' is no IP address"),
    ("127.0.0.1;10.0.0.0/8", "is no IP address"),
])
def test_a_bad_list_is_one_line_naming_the_setting(monkeypatch: pytest.MonkeyPatch,
                                                   value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_networks(value)
    monkeypatch.setenv(SETTING, value)
    with pytest.raises(SettingError, match=problem) as refused:
        load_settings()
    assert str(refused.value).startswith(f"{SETTING}: ")
    assert "\n" not in str(refused.value)


def test_the_console_command_stops_at_start_on_a_bad_list(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYFLOW_CONSOLE_TRUSTED_USER_HEADER", "X-Forwarded-User")
    monkeypatch.setenv(SETTING, "10.0.0.0/8,proxy.internal")
    result = CliRunner().invoke(app, ["console"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        (f"relayflow: {SETTING}: 'proxy.internal' is no IP address or CIDR network "
         "('proxy.internal' does not appear to be an IPv4 or IPv6 network)")]
