"""``relayflow endings sweep``: the ending sweep now, for the configured application.

Front end of ``relayflow.operate.endings``.
"""

from __future__ import annotations

import asyncio

import typer

from relayflow.cli.options import APP, OUTPUT, TIMEOUT, Output, configured, emit_json, seconds_of

__all__ = ["app"]

app = typer.Typer(help="Terminal events of workflows that ended without one: the ending sweep.",
                  no_args_is_help=True)


@app.command("sweep")
def sweep(
    window_seconds: int | None = typer.Option(
        None, "--window-seconds", min=1,
        help="Look this far back (default: RELAYFLOW_ENDINGS_WINDOW_SECONDS); longer after an "
             "outage longer than the window."),
    output: Output = OUTPUT,
    timeout: float | None = TIMEOUT,
    app_spec: str | None = APP,
) -> None:
    """Run the ending sweep now on the application's task queue and show what it started.

    Each closed run of a workflow with an ending (terminated, timed out, failed
    without its terminal event) gets its ``relayflow.EndExecution``, which
    publishes the event; runs handled before are skipped, so it is safe to
    repeat. A worker of the application runs the sweep. Exit 1 when the
    application has no endings or the sweep failed; 3 when Temporal or a
    worker did not answer in time (the sweep then runs when a worker polls).
    """
    from relayflow.operate.endings import sweep_endings_now  # noqa: PLC0415

    settings, served = configured(app_spec)
    done = asyncio.run(sweep_endings_now(settings, seconds=seconds_of(timeout, settings),
                                         window_seconds=window_seconds, app=served))
    if output is Output.JSON:
        emit_json(done.as_json())
    else:
        typer.echo(done.as_line())
        for ending in done.summary.started:
            typer.echo(f"  {ending}")
