"""The ``relayflow`` command line, assembled from one module per command group.

* ``run``: ``worker``, ``bridge``, ``run`` (the application's services);
* ``approvals``: ``approvals``, ``decide``; ``batches``: ``batch-failures``;
* ``operate``: ``send``, ``tail``, ``status``, ``top``; ``dlq``: ``dlq ...``;
* ``verify``, ``demo``, ``asyncapi``, ``codec_server``, ``console``, ``dev``;
* ``activities``: ``activity list|pause|unpause|reset``;
* ``deployments``: ``deployment show|promote``;
* ``endings``: ``endings sweep`` (the ending sweep now).

Each command is a front end: it reads its options (``relayflow.cli.options``:
``--app``, ``--output``, ``--timeout`` are defined once), calls
``relayflow.operate`` or ``relayflow.runtime``, and prints. Heavy modules are
imported inside each command, so ``relayflow --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from typing import Any

import typer
from typer.core import TyperGroup

from relayflow.cli import (
    activities,
    approvals,
    asyncapi,
    batches,
    claim_check,
    codec_server,
    console,
    demo,
    deployments,
    dev,
    dlq,
    endings,
    operate,
    run,
    verify,
)
from relayflow.config.settings import SettingError
from relayflow.operate.errors import OperatorError

__all__ = ["app"]

_TEMPORAL_BRIDGE = "temporalio.bridge.temporal_sdk_bridge"
"""The Temporal SDK's native module (loaded with ``temporalio.client``)."""


class _Commands(TyperGroup):
    """relayflow's commands: a bad or refused setting ends one with its message, no traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run as the ``relayflow`` program (tests call ``main`` instead, and are not affected).

        Once the Temporal SDK is loaded, the process ends without interpreter
        teardown, after flushing its output and logs: the SDK's threads may
        still be finishing a call's callback, and tearing down under them
        aborts the process (temporalio/sdk-python#300), losing the exit status.
        """
        try:
            return super().__call__(*args, **kwargs)
        except SystemExit as done:
            if _TEMPORAL_BRIDGE not in sys.modules:
                raise
            code = done.code
            if isinstance(code, str):
                print(code, file=sys.stderr)  # noqa: T201 - what sys.exit would print
            logging.shutdown()
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code if isinstance(code, int) else 0 if code is None else 1)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SettingError as error:  # a bad setting, or --app naming no application
            message, code = str(error), 2
        except OperatorError as error:  # not found (1), bad input (2), no answer (3)
            message, code = str(error), error.exit_code
            # Let go of what the failed command's frames hold now, a Temporal client above
            # all: one dropped at interpreter exit can abort it (temporalio/sdk-python#300).
            traceback.clear_frames(error.__traceback__)
        typer.echo(f"relayflow: {message}", err=True)
        raise typer.Exit(code)


app = typer.Typer(
    name="relayflow",
    help="Kafka events in, durable Temporal workflows in the middle, outcome events out.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    cls=_Commands,
)

for _group in (run, approvals, batches, codec_server, verify, demo, asyncapi, operate):
    _group.register(app)
app.add_typer(console.app, name="console")
app.add_typer(dlq.app, name="dlq")
app.add_typer(activities.app, name="activity")
app.add_typer(endings.app, name="endings")
app.add_typer(deployments.app, name="deployment")
app.add_typer(claim_check.app, name="claim-check")
app.add_typer(dev.app, name="dev", help="Local Kafka + Temporal dev stack (no Docker).")
