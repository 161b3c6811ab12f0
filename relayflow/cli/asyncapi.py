"""``relayflow asyncapi``: the application's Kafka contract as an AsyncAPI document or page."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from relayflow.cli.options import APP, application, serve_until_terminated
from relayflow.config.settings import Settings, load_settings

__all__ = ["register"]


class _DocumentFormat(StrEnum):
    YAML = "yaml"
    JSON = "json"


def asyncapi(
    output: Path | None = typer.Option(None, "--output", "-o",
                                       help="Write the document to this file (default: stdout)."),
    document_format: _DocumentFormat | None = typer.Option(
        None, "--format", help="yaml or json (default: json for a .json output, else yaml)."),
    *,
    defaults: bool = typer.Option(
        False, "--defaults",
        help="Describe a deployment with default settings, ignoring RELAYFLOW_* variables "
             "(what the committed docs/asyncapi.yaml holds)."),
    serve: bool = typer.Option(
        False, "--serve",
        help="Serve it as an HTML page (and /asyncapi.yaml, /asyncapi.json) until stopped."),
    host: str = typer.Option("127.0.0.1", help="Interface --serve listens on."),
    port: int = typer.Option(8090, help="TCP port --serve listens on (0: any free one)."),
    app_spec: str | None = APP,
) -> None:
    """Write the application's Kafka contract as an AsyncAPI 3.0 document, or serve it as HTML.

    Every topic the bridge and worker read or write (inputs, outcomes, dead
    letters, parked keys), with the .avsc schemas as payloads, the key, the
    headers and the content type; servers, consumer group and framing from
    the settings.
    """
    from relayflow.asyncapi.document import asyncapi_document, to_json, to_yaml  # noqa: PLC0415

    settings = Settings.model_construct() if defaults else load_settings()
    if app_spec:
        settings = settings.model_copy(update={"app": app_spec})
    document = asyncapi_document(application(settings.app), settings)
    if document_format is None:
        json_output = output is not None and output.suffix == ".json"
        document_format = _DocumentFormat.JSON if json_output else _DocumentFormat.YAML
    text = (to_json if document_format is _DocumentFormat.JSON else to_yaml)(document)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    elif not serve:
        typer.echo(text, nl=False)
    if serve:
        _serve_asyncapi(document, host, port)


def _serve_asyncapi(document: dict[str, Any], host: str, port: int) -> None:
    from relayflow.asyncapi.site import AsyncApiSite  # noqa: PLC0415

    try:
        site = AsyncApiSite(document, host=host, port=port)
    except OSError as error:
        typer.echo(f"relayflow: cannot listen on {host}:{port}: {error.strerror}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"AsyncAPI document of {document['info']['title']} on {site.url} (Ctrl-C stops)")
    serve_until_terminated(site)


def register(app: typer.Typer) -> None:
    """Add ``asyncapi`` to ``app``."""
    app.command()(asyncapi)
