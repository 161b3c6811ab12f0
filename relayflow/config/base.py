"""What every settings class shares: ``RELAYFLOW_*`` variables, secret files, one-line errors.

``EnvSettings`` is the base of each section of relayflow's ``Settings`` and of
an application's own settings (the reference app's ``ReferenceSettings``), so
all of them read the same variables the same way.

Secrets can come from files instead: with ``RELAYFLOW_SECRETS_DIR`` set (e.g.
``/run/secrets``, where Docker and Kubernetes mount them), a file there named
like a variable (``RELAYFLOW_KAFKA_SASL_PASSWORD``, case ignored) gives that
setting its content, trailing whitespace stripped. A variable that is set wins
over its file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

__all__ = ["ENV_PREFIX", "EnvSettings", "SettingError", "env_name", "setting_errors"]

ENV_PREFIX = "RELAYFLOW_"
"""The prefix of every setting's variable."""

_SECRETS_DIR = f"{ENV_PREFIX}SECRETS_DIR"


class SettingError(ValueError):
    """A setting is missing, malformed, inconsistent or refused; each line of the message names it.

    Raised when a process starts (or first connects), so it stops before doing anything;
    the CLI prints the message (and no traceback) and exits with status 2.
    """


def env_name(name: str, field: FieldInfo) -> str:
    """The variable of the field ``name``: its alias if it has one, else ``RELAYFLOW_<NAME>``."""
    return field.alias or f"{ENV_PREFIX}{name.upper()}"


class _SecretFiles(SecretsSettingsSource):
    """Settings from the files of ``RELAYFLOW_SECRETS_DIR``; an unreadable one: SettingError."""

    def __call__(self) -> dict[str, Any]:
        try:
            return super().__call__()
        except SettingsError as error:  # pydantic-settings wraps what get_field_value raised
            if isinstance(error.__cause__, SettingError):
                raise error.__cause__ from None
            raise

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        try:
            return super().get_field_value(field, field_name)
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise SettingError(f"{_SECRETS_DIR}: the file of {ENV_PREFIX}{field_name.upper()} "
                               f"cannot be read: {reason}") from None


class EnvSettings(BaseSettings):
    """Secret files: settings from files instead of variables.

    The base of every settings class: ``RELAYFLOW_*`` variables first, then
    the files of ``RELAYFLOW_SECRETS_DIR``. Variables of other settings
    classes (an application's own) are ignored, not refused.

    Attributes:
        secrets_dir: A folder of files named like the variables (e.g.
            ``RELAYFLOW_KAFKA_SASL_PASSWORD``) whose contents are those settings
            (Docker's and Kubernetes' mounted secrets); variables set win. Read
            from the environment only.
    """

    # hide_input_in_errors: a validation error would otherwise quote every value, passwords too.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore",
                                      hide_input_in_errors=True)

    secrets_dir: Path | None = None

    @classmethod
    def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then variables, then the files of ``RELAYFLOW_SECRETS_DIR`` when set.

        Raises:
            SettingError: ``RELAYFLOW_SECRETS_DIR`` is set but is no folder.
        """
        folder = os.environ.get(_SECRETS_DIR)
        if not folder:
            return init_settings, env_settings, dotenv_settings, file_secret_settings
        if not Path(folder).is_dir():
            raise SettingError(f"{_SECRETS_DIR}: {folder} is not a folder")
        return init_settings, env_settings, dotenv_settings, _SecretFiles(settings_cls, folder)

    def as_env(self) -> dict[str, str]:
        """The ``RELAYFLOW_*`` variables that give a child process exactly these settings."""
        fields = type(self).model_fields
        return {env_name(name, fields[name]): _env_value(value)
                for name, value in self.model_dump().items() if value is not None}


def _env_value(value: object) -> str:
    # A child process needs the secret itself, not its mask.
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def setting_errors(error: ValidationError) -> list[str]:
    """One line per bad setting, each starting with the variable it came from.

    Args:
        error: What a settings class (``Settings()``) raised.

    Returns:
        Lines such as ``RELAYFLOW_KAFKA_SSL_CA_FILE: cannot read /x: No such file or directory``.
    """
    lines = []
    for problem in error.errors(include_url=False, include_input=False):
        message = problem["msg"].removeprefix("Value error, ")
        if problem["loc"]:
            name = str(problem["loc"][0])
            name = name if name.startswith(ENV_PREFIX) else f"{ENV_PREFIX}{name.upper()}"
            message = f"{name}: {message}"
        lines.append(message)
    return lines
