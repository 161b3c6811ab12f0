"""``relayflow codec-server``: the Temporal codec server, for reading encrypted payloads."""

from __future__ import annotations

import logging

import typer

from relayflow.cli.options import configure_logging, until_interrupted
from relayflow.config.settings import load_settings

__all__ = ["register"]

log = logging.getLogger(__name__)


def codec_server(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8081, help="TCP port to listen on."),
    dev_no_token: bool = typer.Option(  # noqa: FBT001 - a typer flag
        False, "--dev-no-token",
        help="Development only: serve without RELAYFLOW_CODEC_SERVER_TOKEN, on a loopback "
             "--host only (anyone on this machine can then decrypt)."),
) -> None:
    """Serve the Temporal codec server protocol, so the UI and `temporal` read encrypted payloads.

    Uses the payload encryption keys of the settings; point the UI's codec
    endpoint or `temporal ... --codec-endpoint` at it. Serves no application:
    the keys are the deployment's. Requires RELAYFLOW_CODEC_SERVER_TOKEN.
    """
    from relayflow.temporal.codec_server import (  # noqa: PLC0415
        CodecServer,
        CodecServerLimits,
        CodecServerRefusedError,
    )

    settings = load_settings()
    configure_logging(settings)
    from relayflow.runtime.clients import claim_check  # noqa: PLC0415
    from relayflow.temporal.payload_codec import payload_codec  # noqa: PLC0415

    codec = payload_codec(settings)
    if codec is None:
        typer.echo("relayflow: the codec server needs RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS or "
                   "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS_FILE", err=True)
        raise typer.Exit(2)
    token = settings.codec_server_token
    limits = CodecServerLimits(max_body_bytes=settings.codec_server_max_body_bytes,
                               max_connections=settings.codec_server_max_connections,
                               request_timeout=settings.codec_server_request_timeout_seconds)
    try:
        server = CodecServer(codec, host=host, port=port,
                             token=None if token is None else token.get_secret_value(),
                             origins=settings.codec_server_allowed_origins,
                             hosts=settings.codec_server_host_names, limits=limits,
                             development=dev_no_token, claim_check=claim_check(settings))
    except CodecServerRefusedError as refused:
        typer.echo(f"relayflow: {refused} (--dev-no-token --host 127.0.0.1)", err=True)
        raise typer.Exit(2) from None
    except OSError as error:
        typer.echo(f"relayflow: cannot listen on {host}:{port}: {error.strerror}", err=True)
        raise typer.Exit(2) from None
    if not server.authenticated:
        log.warning("codec server: DEVELOPMENT, no token: anyone on this machine can decrypt "
                    "through %s", server.url)
    log.info(
        "codec server on %s (keys %s, encrypting with %s; %s; CORS for %s; at most %d "
        "connections, %d-byte bodies, %gs per request); temporal workflow show "
        "--codec-endpoint %s ...", server.url, ", ".join(codec.key_ids), codec.active_key_id,
        "bearer token required" if token else "no authentication",
        ", ".join(sorted(settings.codec_server_allowed_origins)) or "no origin",
        limits.max_connections, limits.max_body_bytes, limits.request_timeout, server.url)
    until_interrupted(server.serve)
    log.info("codec server stopped")


def register(app: typer.Typer) -> None:
    """Add ``codec-server`` to ``app``."""
    app.command("codec-server")(codec_server)
