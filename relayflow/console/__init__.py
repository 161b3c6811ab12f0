"""relayflow's web console: dead letters and parked keys, and an application's own pages.

A server-rendered Starlette application (Jinja templates, htmx vendored in
``static/``: no Node build step), served by ``relayflow console`` and
``relayflow run --console`` for the configured application. The console
itself serves sign-in and the application's dead letters and parked keys
(what ``relayflow dlq`` writes: replays, parked keys); an application adds
pages of its own through a ``ConsolePages`` extension (the reference
application: its approvals inbox, orders and batches).

The names below are imported on first use, so an application that lists a
``ConsolePages`` does not load the web server with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relayflow.console.app import console_url, create_app, running_console
    from relayflow.console.extension import APPROVERS, EVERYONE, ConsolePages, NavEntry
    from relayflow.console.users import OPERATOR, User, UserDirectory, hash_password, load_users

__all__ = ["APPROVERS", "EVERYONE", "OPERATOR", "ConsolePages", "NavEntry", "User",
           "UserDirectory", "console_url", "create_app", "hash_password", "load_users",
           "running_console"]

_HOME = {
    "console_url": "app", "create_app": "app", "running_console": "app",
    "APPROVERS": "extension", "EVERYONE": "extension", "ConsolePages": "extension",
    "NavEntry": "extension",
    "OPERATOR": "users", "User": "users", "UserDirectory": "users", "hash_password": "users",
    "load_users": "users",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
