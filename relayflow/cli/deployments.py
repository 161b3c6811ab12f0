"""``relayflow deployment``: a versioned worker's builds (show, promote).

Front ends of ``relayflow.operate.deployments``, for any application whose
worker runs as a Temporal Worker Deployment (``worker_deployment_name``,
``worker_build_id``).
"""

from __future__ import annotations

import asyncio

import typer

from relayflow.cli.options import APP, OUTPUT, TIMEOUT, Output, configured, emit_json, seconds_of

__all__ = ["app"]

app = typer.Typer(help="A versioned worker's builds: show them, promote one.",
                  no_args_is_help=True)

DEPLOYMENT = typer.Option(None, "--deployment",
                          help="The worker deployment (default: RELAYFLOW_WORKER_DEPLOYMENT_NAME).")


@app.command("show")
def show(deployment: str | None = DEPLOYMENT, output: Output = OUTPUT,
         timeout: float | None = TIMEOUT, app_spec: str | None = APP) -> None:
    """The current build and every build's status (a ``drained`` one's workers can stop).

    Exit 1 when Temporal knows no such deployment; 2 when none is named; 3
    when Temporal did not answer.
    """
    from relayflow.operate.deployments import deployment_state  # noqa: PLC0415

    settings, _ = configured(app_spec)
    state = asyncio.run(deployment_state(settings, deployment,
                                         seconds=seconds_of(timeout, settings)))
    if output is Output.JSON:
        emit_json(state.as_json())
        return
    typer.echo(f"worker deployment {state.name}: current build "
               f"{state.current_build_id or '(none)'}")
    for version in state.versions:
        typer.echo(f"  {version.build_id}\t{version.status}")


@app.command("promote")
def promote(build_id: str = typer.Argument(help="The build to make current."),
            deployment: str | None = DEPLOYMENT, output: Output = OUTPUT,
            timeout: float | None = TIMEOUT, app_spec: str | None = APP) -> None:
    """Make a build current: new runs and auto-upgrade runs go to it; pinned runs stay.

    Start the build's workers first: Temporal refuses a build none of whose
    workers has polled. Exit 1 when Temporal refuses; 2 when no deployment is
    named; 3 when Temporal did not answer.
    """
    from relayflow.operate.deployments import promote as promote_build  # noqa: PLC0415

    settings, _ = configured(app_spec)
    done = asyncio.run(promote_build(settings, build_id, deployment,
                                     seconds=seconds_of(timeout, settings)))
    if output is Output.JSON:
        emit_json({"deployment": done.deployment, "build_id": done.build_id,
                   "previous_build_id": done.previous_build_id})
    else:
        typer.echo(done.as_line())
