"""What an operator command says when it cannot do what was asked, and its exit status.

Light on purpose: ``relayflow.cli`` imports it at start-up to turn these
errors into one line and an exit status, for every command.
"""

from __future__ import annotations

__all__ = ["EXIT_BAD_INPUT", "EXIT_NOT_FOUND", "EXIT_UNANSWERED", "BadInput", "NotFound",
           "OperatorError", "Unanswered"]

EXIT_NOT_FOUND = 1
"""Exit status: what was asked for does not exist, or there is nothing to do."""
EXIT_BAD_INPUT = 2
"""Exit status: bad input (JSON, validation, an option); also click's usage errors."""
EXIT_UNANSWERED = 3
"""Exit status: Kafka, Temporal, a worker or a metrics endpoint did not answer in time."""


class OperatorError(Exception):
    """An operator command cannot do what was asked; the CLI prints it and exits ``exit_code``.

    Attributes:
        exit_code: The process's exit status.
    """

    exit_code = 1


class NotFound(OperatorError):
    """What was asked for does not exist, or there is nothing to do."""

    exit_code = EXIT_NOT_FOUND


class BadInput(OperatorError):
    """The input is not valid (JSON, validation against the model, an option)."""

    exit_code = EXIT_BAD_INPUT


class Unanswered(OperatorError):
    """A dependency did not answer in time (or refused the connection).

    Args:
        dependency: What did not answer, with its address (``Kafka at host:port``).
        detail: How (``did not answer within 10 s``).

    Attributes:
        dependency: As given.
    """

    exit_code = EXIT_UNANSWERED

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(f"{dependency} {detail}")
        self.dependency = dependency
