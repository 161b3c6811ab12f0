"""``relayflow dlq``: dead letters and parked keys (list, show, replay, release)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import typer

from relayflow.cli.options import APP, OUTPUT, TIMEOUT, Output, configured, emit_json, seconds_of

if TYPE_CHECKING:
    from relayflow.config.settings import Settings
    from relayflow.operate.records import ShownRecord

__all__ = ["app"]

app = typer.Typer(help="Dead-letter topics and parked keys: list, show, replay, release.",
                  no_args_is_help=True)

_KEY_HELP = "The record key (UTF-8 text; with --hex, hex digits)."


def _key(key: str, *, hex_key: bool) -> bytes:
    try:
        return bytes.fromhex(key) if hex_key else key.encode()
    except ValueError as error:
        raise typer.BadParameter(f"not hex: {key!r}") from error


@app.command("list")
def dlq_list(
    topic: list[str] = typer.Option(None, help="Source topic(s); default the application's "
                                               "input topics."),
    limit: int = typer.Option(50, help="Show the newest this many dead letters."),
    output: Output = OUTPUT,
    timeout: float | None = TIMEOUT,
    app_spec: str | None = APP,
) -> None:
    """The dead letters (newest last) and parked keys of the application's input topics."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from relayflow.operate.deadlines import kafka_answers  # noqa: PLC0415
    from relayflow.operate.dlq import DlqListing, list_dead_letters  # noqa: PLC0415
    from relayflow.operate.records import key_text, shown  # noqa: PLC0415

    settings, served = configured(app_spec)

    async def load() -> DlqListing:
        async with kafka_answers(settings, seconds_of(timeout, settings)):
            return await list_dead_letters(settings, topic or None)

    listing = asyncio.run(load())
    letters = listing.letters
    newest = letters[-limit:]
    if output is Output.JSON:
        from relayflow.runtime.bootstrap import event_codec  # noqa: PLC0415
        from relayflow.runtime.clients import blob_store  # noqa: PLC0415

        codec, blobs = event_codec(settings, served), blob_store(settings)

        async def decoded() -> list[dict[str, object]]:
            return [(await shown(d, codec, blobs)).as_json() for d in newest]

        emit_json({"topics": list(listing.dlq_topics), "dead_letters_total": len(letters),
                   "dead_letters": asyncio.run(decoded()),
                   "parked_keys": listing.parked_json()})
        return
    console = Console()
    table = Table(title=f"dead letters on {', '.join(listing.dlq_topics)}: {len(letters)} "
                        f"(showing the last {len(newest)})")
    for column in ("dlq record", "key", "reason", "event type", "source", "failed at", "error"):
        table.add_column(column)
    for d in newest:
        table.add_row(d.coordinates, key_text(d.key), d.reason, d.event_type,
                      "{}[{}]@{}".format(*d.source), d.failed_at, d.error[:80])
    console.print(table)
    keys = Table(title=f"parked keys of {', '.join(listing.sources)}: {len(listing.parked)} "
                       "(relayflow dlq replay|release TOPIC KEY)")
    for column in ("topic", "key", "reason", "parked at source", "first dead letter",
                   "replay in progress"):
        keys.add_column(column)
    for (source, key), entry in sorted(listing.parked.items()):
        keys.add_row(source, key_text(key), entry.reason,
                     f"[{entry.source_partition}]@{entry.source_offset}",
                     f"{source}.dlq/{entry.dlq_partition}/{entry.dlq_offset}",
                     entry.replay_id or "-")
    console.print(keys)


@app.command("show")
def dlq_show(
    dlq_topic: str = typer.Argument(help="The DLQ topic, e.g. orders.events.dlq."),
    partition: int = typer.Argument(help="Partition."),
    offset: int = typer.Argument(help="Offset."),
    output: Output = OUTPUT,
    timeout: float | None = TIMEOUT,
    app_spec: str | None = APP,
) -> None:
    """One dead letter: headers, and the event if its value decodes."""
    from relayflow.operate.deadlines import NotFound, kafka_answers  # noqa: PLC0415
    from relayflow.operate.dlq import read_dead_letters  # noqa: PLC0415
    from relayflow.operate.records import shown  # noqa: PLC0415
    from schemas.topics import DLQ_SUFFIX  # noqa: PLC0415

    settings, served = configured(app_spec)
    source = dlq_topic.removesuffix(DLQ_SUFFIX)

    async def load() -> ShownRecord:
        async with kafka_answers(settings, seconds_of(timeout, settings)):
            letters = await read_dead_letters(settings, [source], partition=partition,
                                              from_offset=offset)
        found = next((d for d in letters if d.offset == offset), None)
        if found is None:
            raise NotFound(f"no record at {dlq_topic}/{partition}/{offset}")
        from relayflow.runtime.bootstrap import event_codec  # noqa: PLC0415
        from relayflow.runtime.clients import blob_store  # noqa: PLC0415

        return await shown(found, event_codec(settings, served), blob_store(settings))

    letter = asyncio.run(load())
    if output is Output.JSON:
        emit_json(letter.as_json())
        return
    found = letter.record
    typer.echo(f"record   {found.coordinates}")
    typer.echo(f"key      {letter.key}")
    for name, value in found.headers:
        typer.echo(f"header   {name}: {value.decode(errors='replace')}")
    if letter.event is None:
        value = found.value or b""
        typer.echo(f"value    {len(value)} bytes, not decodable ({letter.problem}): "
                   f"{value[:64]!r}")
    else:
        typer.echo(f"event    {letter.event.model_dump_json(indent=2)}")


def _kafka_answering(settings: Settings, topic: str, timeout: float | None) -> None:
    """Raise ``Unanswered`` unless Kafka answers (before work that must not stop half-way)."""
    from relayflow.operate.dlq import kafka_answering  # noqa: PLC0415

    asyncio.run(kafka_answering(settings, topic, seconds_of(timeout, settings)))


@app.command("replay")
def dlq_replay(
    topic: str = typer.Argument(help="Source topic of the parked key, e.g. orders.events."),
    key: str = typer.Argument(help=_KEY_HELP),
    *,
    hex_key: bool = typer.Option(False, "--hex", help="KEY is hex."),
    parked_only: bool = typer.Option(
        False, help="Skip the record that parked the key; replay the ones parked after it."),
    timeout: float | None = TIMEOUT,
    app_spec: str | None = APP,
) -> None:
    """Copy a parked key's dead letters back to its topic, in order; then it flows again."""
    from relayflow.operate.dlq import replay  # noqa: PLC0415

    raw = _key(key, hex_key=hex_key)
    settings, _ = configured(app_spec)
    _kafka_answering(settings, topic, timeout)  # a replay is not cut short by a timeout
    result = asyncio.run(replay(settings, topic, raw, parked_only=parked_only))
    for letter in result.copied:
        typer.echo(f"replayed {letter.coordinates} ({letter.reason}, {letter.event_type})")
    typer.echo({
        "replaying": f"replay {result.replay_id}: {len(result.copied)} record(s) back on "
                     f"{topic}; the bridge releases the key after the last one",
        "released": "nothing to replay; the key is released",
        "not-parked": "the key is not parked; nothing to do",
        "in-progress": f"replay {result.replay_id} of this key is still in progress",
    }[result.status])


@app.command("release")
def dlq_release(
    topic: str = typer.Argument(help="Source topic of the parked key."),
    key: str = typer.Argument(help=_KEY_HELP),
    *,
    hex_key: bool = typer.Option(False, "--hex", help="KEY is hex."),
    timeout: float | None = TIMEOUT,
    app_spec: str | None = APP,
) -> None:
    """Let a parked key flow again without replaying; its dead letters stay on the DLQ."""
    from relayflow.operate.dlq import release  # noqa: PLC0415

    settings, _ = configured(app_spec)
    _kafka_answering(settings, topic, timeout)
    entry = asyncio.run(release(settings, topic, _key(key, hex_key=hex_key)))
    typer.echo("released" if entry else "the key is not parked; nothing to do")
