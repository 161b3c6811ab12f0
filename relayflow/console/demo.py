"""The console in ``relayflow demo``: served beside the demo, with a demo user, until Ctrl-C.

Without configured users (``RELAYFLOW_CONSOLE_USERS_FILE`` / ``_USERS``) the
demo makes one, ``demo``, in every role the console's pages need
(``operator``, and those of the application's ``ConsolePages``) with a
random password that is printed, never logged. Once the demo's scenarios
are done the application's pages may prepare something to look at (the
reference application places one more order that waits for approval), and
the console keeps serving until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
from collections.abc import AsyncIterator, Callable, Iterable

from relayflow.application import load_application
from relayflow.config.settings import SettingError, Settings
from relayflow.console.app import running_console
from relayflow.console.extension import ConsolePages, console_pages
from relayflow.console.users import OPERATOR, UserDirectory, hash_password, load_users

__all__ = ["DEMO_USER", "DemoConsole", "demo_console", "demo_users"]

DEMO_USER = "demo"
"""The demo user's name."""


def _pages(settings: Settings) -> ConsolePages | None:
    return console_pages(load_application(settings.app))


def demo_users(settings: Settings) -> tuple[UserDirectory, str | None]:
    """The configured users, or a ``demo`` user in every role and its new password."""
    if settings.console_users_file is not None or settings.console_users is not None:
        return load_users(settings), None
    password = secrets.token_urlsafe(9)
    pages = _pages(settings)
    roles = frozenset({OPERATOR, *(pages.demo_roles(settings) if pages else ())})
    return UserDirectory({DEMO_USER: (roles, hash_password(password))}), password


class DemoConsole:
    """The demo's running console.

    Args:
        settings: The demo's settings.
        url: Where the console serves.
        say: Prints a line for the person running the demo.
    """

    def __init__(self, settings: Settings, url: str, say: Callable[[str], object]) -> None:
        self.settings = settings
        self.url = url
        self._say = say

    async def linger(self, services: Iterable[asyncio.Task[None]]) -> None:
        """Let the application's pages prepare something, then serve until Ctrl-C."""
        pages = _pages(self.settings)
        welcome = await pages.demo_welcome(self.settings, self.url) if pages else None
        self._say(f"{welcome or f'console: {self.url}'} (Ctrl-C stops the demo; the stack "
                  "keeps running)")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        waiting = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([waiting, *services], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


@contextlib.asynccontextmanager
async def demo_console(settings: Settings,
                       say: Callable[[str], object]) -> AsyncIterator[DemoConsole | None]:
    """The console served for the demo, its URL and sign-in printed; None if it cannot listen."""
    users, password = demo_users(settings)
    async with contextlib.AsyncExitStack() as stack:
        try:
            url = await stack.enter_async_context(running_console(settings, users=users))
        except SettingError as error:  # e.g. the port is taken: the demo runs without it
            say(f"[yellow]no console: {error}[/yellow]")
            yield None
            return
        say(f"console: {url}" + (f"  user [bold]{DEMO_USER}[/bold]  password "
                                 f"[bold]{password}[/bold]" if password else ""))
        yield DemoConsole(settings, url, say)
