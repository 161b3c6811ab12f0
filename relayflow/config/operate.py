"""Settings of the operator commands (``relayflow.operate``) and the web console."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from relayflow.config.base import EnvSettings
from relayflow.config.networks import Network, parse_networks

__all__ = ["ConsoleSettings", "OperatorSettings"]


class OperatorSettings(EnvSettings):
    """Operator commands: how long they wait for answers, and the Temporal UI they link to.

    Attributes:
        operator_timeout_seconds: How long an operator command (``send``,
            ``tail``, ``decide``, ``status``, ``top``, ``approvals``, ``dlq``)
            waits for each answer of Kafka, Temporal, a worker (queries) or a
            metrics endpoint before it says which did not answer and exits 3.
        temporal_ui_base_url: The Temporal web UI as operators reach it (e.g.
            ``https://temporal.example.com``), for the links ``relayflow status``
            prints; default the dev stack's (``temporal_ui_port`` on 127.0.0.1).
        decision_key_file: The Ed25519 key file ``relayflow decide`` signs
            decisions with (``relayflow approval-key``); ``--key`` wins; unset:
            the dev stack's ``<data_dir>/keys/approver.key`` when it exists, else
            decisions go out unsigned (and a workflow that requires signatures
            refuses them).
    """

    operator_timeout_seconds: float = Field(default=10.0, gt=0)
    temporal_ui_base_url: str | None = None
    decision_key_file: Path | None = None


class ConsoleSettings(EnvSettings):
    """Console: where relayflow console listens, who signs in and how.

    Attributes:
        console_host: Interface ``relayflow console`` listens on.
        console_port: TCP port of ``relayflow console`` (0: any free port).
        console_decision_key_file: The Ed25519 key file the console signs its
            users' decisions with (as ``<group>/<user>``): register its public key
            as acting for the approver groups the console serves. Unset: the
            dev stack's ``<data_dir>/keys/console.key`` when it exists, else
            decisions go out unsigned.
        console_users_file: TOML file of the console's users: a table per user
            with ``password_hash`` (argon2) and ``roles`` (approver groups such
            as ``orders-approvers``, and ``operator``).
        console_users: The same users as JSON (``{"ann": {"password_hash":
            "...", "roles": ["orders-approvers"]}}``), instead of the file.
        console_secret_key: Signs the console's session cookies; unset: a
            random key per process (sessions end when it restarts). Never shown.
        console_session_seconds: How long a console sign-in lasts.
        console_secure_cookies: Send the session cookie over HTTPS only. Unset
            (default): always, except to a plain-HTTP request to a console
            listening on loopback (local development; said at start). ``true``:
            always; ``false``: never (not for production).
        console_trusted_user_header: A request header naming the signed-in user,
            set by an authenticating reverse proxy (e.g. ``X-Forwarded-User``);
            unset (default): users sign in with a password. Only for a console
            no one can reach but through that proxy.
        console_trusted_roles_header: With ``console_trusted_user_header``, a
            header listing the user's roles, comma-separated; unset: the roles
            of that user in the users file or setting.
        console_trusted_proxies: The addresses and CIDR networks
            (comma-separated) of reverse proxies in front of the console: their
            connections may set the identity headers (a request from elsewhere
            that sets one is refused, 403), and their ``X-Forwarded-For`` and
            ``X-Forwarded-Proto`` name the client's address (for failed
            sign-ins) and whether it used HTTPS (for HSTS and secure cookies).
            Default: loopback (``127.0.0.1,::1``).
        console_signin_attempts: Failed console sign-ins for one user name from
            one client address within ``console_signin_window_seconds`` that lock
            that pair out; as many from anywhere slow that name's sign-ins down
            (``console_signin_backoff_seconds``), never lock it out (0: neither).
        console_signin_address_attempts: The same for one client address (the
            connection's peer), whatever names it tries (0: no limit).
        console_signin_window_seconds: How far back failed sign-ins count.
        console_signin_lockout_seconds: How long a locked-out (name, address) pair
            or address is refused, its password not even checked.
        console_signin_backoff_seconds: The longest a sign-in as a user name that
            failed ``console_signin_attempts`` times within the window (from
            anywhere) waits before its password is checked: 0.5 s, doubling with
            each further failure (0: no wait).
    """

    console_host: str = "127.0.0.1"
    console_port: int = Field(default=8400, ge=0, le=65535)
    console_decision_key_file: Path | None = None
    console_users_file: Path | None = None
    console_users: str | None = None
    console_secret_key: SecretStr | None = None
    console_session_seconds: int = Field(default=8 * 3600, gt=0)
    console_secure_cookies: bool | None = None
    console_trusted_user_header: str | None = None
    console_trusted_roles_header: str | None = None
    console_trusted_proxies: str = "127.0.0.1,::1"
    # Failed sign-ins (relayflow/console/throttle.py).
    console_signin_attempts: int = Field(default=5, ge=0)
    console_signin_address_attempts: int = Field(default=20, ge=0)
    console_signin_window_seconds: float = Field(default=300.0, gt=0)
    console_signin_lockout_seconds: float = Field(default=300.0, gt=0)
    console_signin_backoff_seconds: float = Field(default=5.0, ge=0)

    @field_validator("console_trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @property
    def console_trusted_networks(self) -> tuple[Network, ...]:
        """The networks of ``console_trusted_proxies``."""
        return parse_networks(self.console_trusted_proxies)
