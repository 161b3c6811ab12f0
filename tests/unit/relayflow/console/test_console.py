"""The console's parts that need no service: users, templates, assets, rules, commands."""

from __future__ import annotations

import hashlib
import json
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relayflow.cli.main import app
from relayflow.config.settings import SettingError, Settings
from relayflow.console.demo import DEMO_USER, demo_users
from relayflow.console.extension import APPROVERS, EVERYONE, OPERATOR, NavEntry, home_of
from relayflow.console.memory import remember
from relayflow.console.pages.auth import _safe_next
from relayflow.console.users import User, hash_password, load_users
from relayflow.console.web import TEMPLATES, templates_for
from relayflow.reference.activities.store import Store
from relayflow.reference.console import REFERENCE_PAGES
from relayflow.reference.console.batches import FAILURES_PAGE, failures_page
from relayflow.reference.console.inbox import deciding_group
from relayflow.reference.workflows.approval import ApprovalState

STATIC = Path(__file__).resolve().parents[4] / "relayflow" / "console" / "static"
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
"""htmx.min.js of the npm package htmx.org 2.0.11 (``make htmx`` fetches it again)."""
ARGON2 = hash_password("s3cret")


def users_file(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "users.toml"
    path.write_text(text)
    return Settings(console_users_file=path)


def test_users_come_from_a_toml_file_and_only_their_password_signs_them_in(
        tmp_path: Path) -> None:
    users = load_users(users_file(tmp_path, f"""
[users.ann]
password_hash = "{ARGON2}"
roles = ["orders-approvers", "operator"]
"""))
    ann = users.authenticate("ann", "s3cret")
    assert ann == User("ann", frozenset({"orders-approvers", "operator"}))
    assert ann.groups == {"orders-approvers"}
    assert ann.is_operator
    assert users.authenticate("ann", "S3cret") is None
    assert users.authenticate("eve", "s3cret") is None


def test_users_come_from_json_too() -> None:
    users = load_users(Settings(console_users=json.dumps(
        {"bob": {"password_hash": ARGON2, "roles": ["orders-managers"]}})))
    assert users.get("bob") == User("bob", frozenset({"orders-managers"}))


@pytest.mark.parametrize(("text", "problem"), [
    ("[users.ann\n", "is not TOML"),
    ("[other]\n", "no users"),
    ('[users.ann]\nroles = ["x"]\n', "no password_hash"),
    ('[users.ann]\npassword_hash = "plain"\nroles = ["x"]\n', "not an argon2 hash"),
    (f'[users.ann]\npassword_hash = "{ARGON2}"\nroles = []\n', "roles must be"),
    (f'[users."a/b"]\npassword_hash = "{ARGON2}"\nroles = ["x"]\n', "a name is letters"),
])
def test_a_bad_users_file_is_one_line_naming_the_setting(tmp_path: Path, text: str,
                                                         problem: str) -> None:
    with pytest.raises(SettingError, match=problem) as raised:
        load_users(users_file(tmp_path, text))
    assert str(raised.value).startswith("RELAYFLOW_CONSOLE_USERS_FILE: ")
    assert ARGON2 not in str(raised.value)


def test_users_must_be_configured_once(tmp_path: Path) -> None:
    with pytest.raises(SettingError, match="no console users are configured"):
        load_users(Settings())
    with pytest.raises(SettingError, match="both set"):
        load_users(Settings(console_users="{}", console_users_file=tmp_path / "u.toml"))
    with pytest.raises(SettingError, match="RELAYFLOW_CONSOLE_USERS_FILE: cannot read"):
        load_users(Settings(console_users_file=tmp_path / "missing.toml"))
    with pytest.raises(SettingError, match="RELAYFLOW_CONSOLE_USERS: not JSON"):
        load_users(Settings(console_users="{"))
    assert len(load_users(Settings(console_trusted_user_header="X-Forwarded-User"))) == 0


def test_every_template_compiles() -> None:
    own = TEMPLATES.env.list_templates()
    assert "dead_letters.html" in own
    assert "approvals.html" not in own  # the reference application's, not the console's
    templates = templates_for(REFERENCE_PAGES)
    names = templates.env.list_templates()
    assert "approvals.html" in names
    assert set(own) <= set(names)
    for name in names:
        templates.env.get_template(name)


def test_a_users_first_page_is_the_one_of_their_most_particular_role() -> None:
    nav = (*REFERENCE_PAGES.nav, NavEntry("Dead letters", "/dead-letters", OPERATOR))
    ann = User("ann", frozenset({"orders-approvers"}))
    olga = User("olga", frozenset({OPERATOR}))
    both = User("kim", frozenset({"orders-approvers", OPERATOR}))
    nobody = User("eve", frozenset({"x-" + OPERATOR}))
    assert [home_of(u, nav) for u in (ann, olga, both)] == ["/approvals", "/dead-letters",
                                                             "/approvals"]
    assert home_of(nobody, nav) == "/approvals"  # any role but operator is an approver group
    # Another application's console: dead letters only.
    assert home_of(olga, nav[-1:]) == "/dead-letters"
    assert home_of(ann, nav[-1:]) is None
    assert home_of(ann, (NavEntry("Tickets", "/tickets", EVERYONE),)) == "/tickets"
    assert {e.role for e in REFERENCE_PAGES.nav} == {APPROVERS, EVERYONE}


def test_htmx_is_the_pinned_release() -> None:
    vendored = (STATIC / "htmx.min.js").read_bytes()
    assert hashlib.sha256(vendored).hexdigest() == HTMX_SHA256
    assert b'version:"2.0.11"' in vendored


@pytest.mark.parametrize(("target", "safe"), [
    ("/approvals", "/approvals"), ("//evil.example/x", "/"), ("https://evil.example", "/"),
    ("/\\evil.example", "/"), (None, "/"), ("", "/"),
])
def test_only_a_console_path_is_a_place_to_go_after_signing_in(target: str | None,
                                                              safe: str) -> None:
    assert _safe_next(target) == safe


def state(approver: str, approvers: list[str]) -> ApprovalState:
    return ApprovalState(required=True, status="waiting", approver=approver,
                         approvers=approvers, deadline=datetime.now(UTC))


def test_a_user_decides_as_the_group_asked() -> None:
    both = User("kim", frozenset({"orders-approvers", "orders-managers"}))
    escalated = state("orders-managers", ["orders-approvers", "orders-managers"])
    assert deciding_group(both, escalated) == "orders-managers"
    first = User("ann", frozenset({"orders-approvers"}))
    assert deciding_group(first, escalated) == "orders-approvers"
    assert deciding_group(first, state("orders-approvers", ["orders-approvers"])) \
        == "orders-approvers"
    manager = User("max", frozenset({"orders-managers", "operator"}))
    assert deciding_group(manager, state("orders-approvers", ["orders-approvers"])) is None
    # A saga from before the approver rule asked its approver only.
    assert deciding_group(first, state("orders-approvers", [])) == "orders-approvers"


def test_failed_items_come_a_page_at_a_time(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db", card_limit_cents=1)
    store.record_failures("b1", 0, [(f"bad-{i:03}", "invalid") for i in range(120)])
    first = failures_page(store, "b1", 1)
    assert (first.page, first.pages, first.total) == (1, 3, 120)
    assert first.items[0] == ("bad-000", "invalid")
    assert len(first.items) == FAILURES_PAGE
    last = failures_page(store, "b1", 99)
    assert last.page == 3
    assert [item for item, _ in last.items] == [f"bad-{i:03}" for i in range(100, 120)]
    assert failures_page(store, "none", 1).pages == 1


def test_hash_password_prints_an_argon2_hash_of_standard_input() -> None:
    result = CliRunner().invoke(app, ["console", "hash-password"], input="pa55word\n")
    assert result.exit_code == 0, result.output
    hashed = result.stdout.strip()
    assert hashed.startswith("$argon2id$")
    users = load_users(Settings(console_users=json.dumps(
        {"ann": {"password_hash": hashed, "roles": ["x"]}})))
    assert users.authenticate("ann", "pa55word") is not None


def test_the_console_command_stops_at_once_on_bad_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["console"])
    assert result.exit_code == 2
    assert "RELAYFLOW_CONSOLE_USERS_FILE: no console users" in result.output
    monkeypatch.setenv("RELAYFLOW_CONSOLE_USERS", json.dumps(
        {"ann": {"password_hash": ARGON2, "roles": ["x"]}}))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["console", "--port", str(port)])
    assert result.exit_code == 2
    assert f"RELAYFLOW_CONSOLE_PORT: cannot listen on 127.0.0.1:{port}" in result.output


def test_the_demo_makes_a_user_in_every_role_unless_users_are_configured() -> None:
    users, password = demo_users(Settings())
    assert password is not None
    demo = users.authenticate(DEMO_USER, password)
    assert demo is not None
    assert demo.roles == {"orders-approvers", "orders-managers", "operator"}
    configured = Settings(console_users=json.dumps(
        {"ann": {"password_hash": ARGON2, "roles": ["x"]}}))
    users, password = demo_users(configured)
    assert password is None
    assert users.get(DEMO_USER) is None


def test_run_with_the_console_stops_at_once_without_users() -> None:
    result = CliRunner().invoke(app, ["run", "--console"])
    assert result.exit_code == 2
    assert "RELAYFLOW_CONSOLE_USERS_FILE: no console users" in result.output


def test_the_console_caches_forget_their_oldest_entry_when_full() -> None:
    cache: dict[str, int] = {}
    for n in range(10_001):
        remember(cache, f"k{n}", n)
    assert len(cache) == 10_000
    assert "k0" not in cache
    assert cache["k10000"] == 10_000
