"""Pages an application adds to the console: the ``ConsolePages`` extension.

The console itself serves what every application has: sign-in, and the
dead letters and parked keys of the application's input topics. An
application's own pages (the reference application's orders, approvals
inbox and batches) come from the object in its ``Application.extensions``
that is a ``ConsolePages``: their routes, built once around the running
console, their entries in the navigation with the role each needs, and a
folder of templates (which may extend the console's ``base.html``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from relayflow.console.users import OPERATOR, User

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from relayflow.application import Application
    from relayflow.config.settings import Settings
    from relayflow.console.web import Console

__all__ = ["APPROVERS", "EVERYONE", "OPERATOR", "ConsolePages", "NavEntry", "console_pages",
           "has_role", "home_of", "may_see", "role_of"]

EVERYONE = "everyone"
"""``NavEntry.role``: every signed-in user who holds a role (any approver group, or operator)."""
APPROVERS = "approvers"
"""``NavEntry.role``: users in at least one approver group (any role but ``operator``)."""
_HOME_ORDER = (APPROVERS, OPERATOR, EVERYONE)
"""A user's first page: the most particular role's (an approver's inbox before the rest)."""


@dataclass(frozen=True, slots=True)
class NavEntry:
    """A page in the console's navigation.

    Attributes:
        title: The link's text (``Orders``).
        path: Where it leads (``/orders``).
        role: Who sees it: ``EVERYONE``, ``APPROVERS`` or ``OPERATOR``.
    """

    title: str
    path: str
    role: str = EVERYONE


def has_role(user: User, role: str) -> bool:
    """Whether ``user`` holds ``role`` (``EVERYONE``: any role; ``APPROVERS``: any group)."""
    if role == APPROVERS:
        return bool(user.groups)
    if role == EVERYONE:
        return bool(user.roles)
    return role in user.roles


def may_see(user: User, entry: NavEntry) -> bool:
    """Whether ``entry`` is in ``user``'s navigation."""
    return has_role(user, entry.role)


def role_of(path: str, nav: Sequence[NavEntry]) -> str:
    """The role a page needs: its navigation entry's (the longest path it is under), else any."""
    under = [e for e in nav if path == e.path or path.startswith(e.path.rstrip("/") + "/")]
    return max(under, key=lambda e: len(e.path)).role if under else EVERYONE


def console_pages(app: Application) -> ConsolePages | None:
    """The application's ``ConsolePages`` extension, or None."""
    return app.extension(ConsolePages)


def home_of(user: User, nav: Sequence[NavEntry]) -> str | None:
    """The first page of ``user``: the first entry they see, of the most particular role."""
    for role in _HOME_ORDER:
        found = next((e.path for e in nav if e.role == role and may_see(user, e)), None)
        if found is not None:
            return found
    return None


@runtime_checkable
class ConsolePages(Protocol):
    """An application's own pages in the console.

    Attributes:
        nav: Its navigation entries, in order (before the console's own).
        template_folder: Its Jinja templates (searched after the console's).
        template_filters: Jinja filters its templates use.
    """

    @property
    def nav(self) -> Sequence[NavEntry]: ...  # noqa: D102 - the class docstring says it

    @property
    def template_folder(self) -> Path: ...  # noqa: D102

    @property
    def template_filters(self) -> Mapping[str, Callable[..., Any]]: ...  # noqa: D102

    def routes(self, console: Console) -> Sequence[BaseRoute]:
        """Its Starlette routes around the running console (built once, when it starts).

        The console refuses a request to any of them unless the user holds
        the role of the navigation entry the route's path is under (any role
        when under none); handlers may check more
        (``relayflow.console.web.signed_in``). Only ``Route`` routes are served.
        """
        ...

    def demo_roles(self, settings: Settings) -> frozenset[str]:
        """Roles the demo's user needs to see every page (besides ``operator``)."""
        ...

    async def demo_welcome(self, settings: Settings, url: str) -> str | None:
        """Prepare something to look at in ``relayflow demo``; the line that says where."""
        ...
