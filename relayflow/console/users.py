"""The console's users: who may sign in, with which roles, and their password hashes.

Users come from a TOML file (``RELAYFLOW_CONSOLE_USERS_FILE``) or the same
as JSON (``RELAYFLOW_CONSOLE_USERS``)::

    [users.ann]
    password_hash = "$argon2id$v=19$m=65536,t=3,p=4$..."   # relayflow console hash-password
    roles = ["orders-approvers"]

    [users.olga]
    password_hash = "$argon2id$..."
    roles = ["operator"]

A role is an approver group (the names the saga asks, ``RELAYFLOW_APPROVER``
and ``RELAYFLOW_ESCALATION_APPROVER``) or ``operator`` (dead letters, parked
keys). Hashes are argon2 (``argon2-cffi``); the console never stores a password.
Checking one takes ~200 ms of CPU, so the console checks them on a small
pool of threads (``check_password``), never on its event loop.

The users file is read again when it changes (its size or modification
time), so a new password hash or a removed user takes effect at once and
ends that user's sessions; a file that no longer parses is logged and the
users read before stay. ``RELAYFLOW_CONSOLE_USERS`` is read once.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from relayflow.config.settings import SettingError, Settings

__all__ = ["OPERATOR", "User", "UserDirectory", "hash_password", "is_valid_name", "load_users"]

OPERATOR = "operator"
"""The role that may see and act on dead letters and parked keys."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
"""User names and roles: they end up in ``decided_by`` (``<group>/<user>``) and in URLs."""

log = logging.getLogger(__name__)

_HASHER = PasswordHasher()
_CHECKING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="console-password")
"""Password checks run here, two at a time: the event loop answers meanwhile, and a flood of
sign-ins queues rather than taking every core."""


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when the user is unknown.

    That costs as long as a real check, so response times do not tell which
    user names exist. Made by the first directory, not at import: an argon2
    hash takes ~0.5 s, which every process importing the app would pay.
    """
    return _HASHER.hash("relayflow-console-no-such-user")


def is_valid_name(name: str) -> bool:
    """Whether ``name`` may be a user name or a role."""
    return _NAME.match(name) is not None


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` for the users file."""
    return _HASHER.hash(password)


@dataclass(frozen=True, slots=True)
class User:
    """A person signed in to the console.

    Attributes:
        name: The user name (the person in ``decided_by``).
        roles: Approver groups and ``operator``.
    """

    name: str
    roles: frozenset[str]

    @property
    def is_operator(self) -> bool:
        """May see and act on dead letters and parked keys."""
        return OPERATOR in self.roles

    @property
    def groups(self) -> frozenset[str]:
        """The approver groups among the roles."""
        return self.roles - {OPERATOR}


@dataclass(frozen=True, slots=True)
class _Entry:
    user: User
    password_hash: str | None


class UserDirectory:
    """The users who may sign in.

    Args:
        entries: User name -> (roles, argon2 hash or None for proxy-only users).
        source: The users file to read again when it changes (None: never).
    """

    def __init__(self, entries: dict[str, tuple[frozenset[str], str | None]],
                 source: _UsersFile | None = None) -> None:
        self._entries = self._built(entries)
        self._source = source
        _dummy_hash()  # before the first sign-in, which must not take longer for it
        self._stamp = source.stamp() if source is not None else None

    @staticmethod
    def _built(entries: dict[str, tuple[frozenset[str], str | None]]) -> dict[str, _Entry]:
        return {name: _Entry(User(name, roles), hashed)
                for name, (roles, hashed) in entries.items()}

    def _current(self) -> dict[str, _Entry]:
        """The entries, read again first if the users file changed."""
        source = self._source
        if source is not None and (stamp := source.stamp()) != self._stamp:
            self._stamp = stamp
            try:
                self._entries = self._built(source.read())
            except SettingError as error:
                log.error("console: kept the users read before: %s", error)  # noqa: TRY400
            else:
                log.info("console: read the users again from %s", source.path)
        return self._entries

    def __len__(self) -> int:
        """How many users there are."""
        return len(self._current())

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else None (unknown users take as long).

        This takes ~200 ms of CPU: in the event loop, use ``check_password``.
        """
        entry = self._current().get(name)
        hashed = entry.password_hash if entry is not None else None
        try:
            _HASHER.verify(hashed or _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return None
        return entry.user if entry is not None and hashed else None

    async def check_password(self, name: str, password: str) -> User | None:
        """``authenticate`` on the password-checking threads, the event loop free meanwhile."""
        return await asyncio.get_running_loop().run_in_executor(
            _CHECKING, self.authenticate, name, password)

    def get(self, name: str) -> User | None:
        """The user called ``name``, if any."""
        entry = self._current().get(name)
        return entry.user if entry is not None else None

    def password_hash(self, name: str) -> str | None:
        """The password hash of ``name`` (None: unknown, or signed in by the proxy only)."""
        entry = self._current().get(name)
        return entry.password_hash if entry is not None else None


@dataclass(frozen=True, slots=True)
class _UsersFile:
    setting: str
    path: Path
    need_hash: bool

    def stamp(self) -> tuple[int, int, int] | None:
        try:
            found = self.path.stat()
        except OSError:
            return None
        return found.st_ino, found.st_mtime_ns, found.st_size

    def read(self) -> dict[str, tuple[frozenset[str], str | None]]:
        try:
            raw: Any = tomllib.loads(self.path.read_text(encoding="utf-8")).get("users")
        except OSError as error:
            raise SettingError(f"{self.setting}: cannot read {self.path}: "
                               f"{error.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise SettingError(f"{self.setting}: {self.path} is not TOML: {error}") from None
        return _entries(self.setting, raw, need_hash=self.need_hash)


def load_users(settings: Settings) -> UserDirectory:
    """The users of ``RELAYFLOW_CONSOLE_USERS_FILE`` or ``RELAYFLOW_CONSOLE_USERS``.

    Raises:
        SettingError: Both or neither are set (neither is fine with a trusted
            identity header), the file cannot be read or parsed, or an entry is
            malformed; one line naming the setting.
    """
    if settings.console_users_file is not None and settings.console_users is not None:
        raise SettingError("RELAYFLOW_CONSOLE_USERS_FILE and RELAYFLOW_CONSOLE_USERS are both "
                           "set; set one")
    need_hash = not settings.console_trusted_user_header
    if settings.console_users_file is not None:
        source = _UsersFile("RELAYFLOW_CONSOLE_USERS_FILE", settings.console_users_file,
                            need_hash)
        return UserDirectory(source.read(), source)
    if settings.console_users is not None:
        setting = "RELAYFLOW_CONSOLE_USERS"
        try:
            raw = json.loads(settings.console_users)
        except json.JSONDecodeError as error:
            raise SettingError(f"{setting}: not JSON: {error}") from None
        return UserDirectory(_entries(setting, raw, need_hash=need_hash))
    if settings.console_trusted_user_header:
        return UserDirectory({})
    raise SettingError("RELAYFLOW_CONSOLE_USERS_FILE: no console users are configured "
                       "(or RELAYFLOW_CONSOLE_USERS, or RELAYFLOW_CONSOLE_TRUSTED_USER_HEADER)")


def _entries(setting: str, raw: Any, *, need_hash: bool,
             ) -> dict[str, tuple[frozenset[str], str | None]]:
    if not isinstance(raw, dict) or not raw:
        raise SettingError(f"{setting}: no users (expected a table of users: [users.<name>])")
    entries: dict[str, tuple[frozenset[str], str | None]] = {}
    for name, entry in raw.items():
        where = f"{setting}: user {name!r}"
        if not _NAME.match(name):
            raise SettingError(f"{where}: a name is letters, digits and . _ @ - (at most 64)")
        if not isinstance(entry, dict):
            raise SettingError(f"{where}: expected a table with password_hash and roles")
        roles = entry.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) and _NAME.match(r)
                                                  for r in roles) or not roles:
            raise SettingError(f"{where}: roles must be a non-empty list of names "
                               "(approver groups, operator)")
        hashed = entry.get("password_hash")
        if hashed is None and need_hash:
            raise SettingError(f"{where}: no password_hash "
                               "(make one with: relayflow console hash-password)")
        if hashed is not None and (not isinstance(hashed, str)
                                   or not hashed.startswith("$argon2")):
            raise SettingError(f"{where}: password_hash is not an argon2 hash "
                               "(make one with: relayflow console hash-password)")
        entries[name] = (frozenset(roles), hashed)
    return entries
