"""``relayflow codec-server``: the Temporal codec server, for reading encrypted payloads."""

from __future__ import annotations

import logging

import typer

from relayflow.cli.options import configure_logging, serve_until_terminated
from relayflow.config.settings import load_settings

__all__ = ["register"]

log = logging.getLogger(__name__)


def codec_server(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8081, help="TCP port to listen on."),
) -> None:
    """Serve the Temporal codec server protocol, so the UI and `temporal` read encrypted payloads.

    Uses the payload encryption keys of the settings; point the UI's codec
    endpoint or `temporal ... --codec-endpoint` at it. Serves no application:
    the keys are the deployment's.
    """
    from relayflow.temporal.codec_server import CodecServer  # noqa: PLC0415

    settings = load_settings()
    configure_logging(settings)
    from relayflow.temporal.payload_codec import payload_codec  # noqa: PLC0415

    codec = payload_codec(settings)
    if codec is None:
        typer.echo("relayflow: the codec server needs RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS or "
                   "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS_FILE", err=True)
        raise typer.Exit(2)
    token = settings.codec_server_token
    try:
        server = CodecServer(codec, host=host, port=port,
                             token=None if token is None else token.get_secret_value(),
                             origins=settings.codec_server_allowed_origins)
    except OSError as error:
        typer.echo(f"relayflow: cannot listen on {host}:{port}: {error.strerror}", err=True)
        raise typer.Exit(2) from None
    log.info(
        "codec server on %s (keys %s, encrypting with %s; %s; CORS for %s); "
        "temporal workflow show --codec-endpoint %s ...", server.url, ", ".join(codec.key_ids),
        codec.active_key_id, "bearer token required" if token else "no authentication",
        ", ".join(sorted(settings.codec_server_allowed_origins)) or "no origin", server.url)
    serve_until_terminated(server)
    log.info("codec server stopped")


def register(app: typer.Typer) -> None:
    """Add ``codec-server`` to ``app``."""
    app.command("codec-server")(codec_server)
