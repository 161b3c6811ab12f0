"""Dead letters and parked keys (operator role): list, show one, replay or release a key.

Everything goes through ``relayflow.operate.dlq``, the code behind ``relayflow
dlq``, so the console's replay and release are the CLI's. The topics are
the configured application's input topics (named to ``operate.dlq``
explicitly), and a dead letter's event is decoded with its codec.
"""

from __future__ import annotations

import binascii
import json
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relayflow.console.users import OPERATOR
from relayflow.console.web import BadInput, Console, console, page, posted, signed_in
from relayflow.operate import dlq as dlq_admin
from relayflow.operate.records import shown
from relayflow.runtime.clients import blob_store
from schemas.topics import DLQ_SUFFIX

if TYPE_CHECKING:
    from bridge.parking import ParkEntry

__all__ = ["ROUTES"]

_LISTED = 200
"""Dead letters listed (the newest)."""
_ACTIONS = ("replay", "replay-parked-only", "release")


def _topic(c: Console, raw: str) -> str:
    inputs = c.app.input_topics
    if raw not in inputs:
        raise BadInput(f"Unknown topic {raw[:100]!r}: one of {', '.join(inputs)}.")
    return raw


async def _parked(c: Console) -> dict[tuple[str, bytes], ParkEntry]:
    """The application's parked keys (the parked-keys topic may hold other applications')."""
    inputs = set(c.app.input_topics)
    return {(source, key): entry
            for (source, key), entry in (await dlq_admin.parked_keys(c.settings)).items()
            if source in inputs}


def _key(raw: str) -> bytes:
    try:
        return bytes.fromhex(raw)
    except ValueError:
        raise BadInput("The key is not hex (keys travel hex-encoded in these forms).") from None


def _shown(key: bytes | None) -> str:
    if key is None:
        return "(no key)"
    try:
        return key.decode()
    except UnicodeDecodeError:
        return f"0x{binascii.hexlify(key).decode()}"


async def dead_letters(request: Request) -> Response:
    """Dead letters (filtered by topic and reason) and the parked keys."""
    user = signed_in(request, OPERATOR)
    topic = request.query_params.get("topic", "")
    reason = request.query_params.get("reason", "")
    c = console(request)
    topics = [_topic(c, topic)] if topic else list(c.app.input_topics)
    letters = await dlq_admin.read_dead_letters(c.settings, topics)
    reasons = sorted({d.reason for d in letters})
    matching = [d for d in letters if not reason or d.reason == reason]
    parked = await _parked(c)
    keys = [(source, key, _shown(key), entry) for (source, key), entry in sorted(parked.items())
            if not topic or source == topic]
    return page(request, "dead_letters.html", user=user, topics=c.app.input_topics, topic=topic,
                reasons=reasons, reason=reason, letters=matching[-_LISTED:][::-1],
                matching=len(matching), total=len(letters), keys=keys, shown=_shown)


async def dead_letter(request: Request) -> Response:
    """One dead letter: its headers, and its event if the value decodes."""
    user = signed_in(request, OPERATOR)
    c = console(request)
    dlq_topic = request.path_params["dlq_topic"]
    source = _topic(c, dlq_topic.removesuffix(DLQ_SUFFIX))
    partition, offset = request.path_params["partition"], request.path_params["offset"]
    letters = await dlq_admin.read_dead_letters(c.settings, [source],
                                                partition=partition, from_offset=offset)
    found = next((d for d in letters if d.offset == offset), None)
    if found is None:
        raise BadInput(f"No record at {dlq_topic}/{partition}/{offset}.", status=404)
    # As the CLI shows it: a value that went by claim check is fetched from the store.
    letter = await shown(found, c.codec, blob_store(c.settings))
    event = json.dumps(letter.event.model_dump(mode="json"), indent=2) if letter.event else ""
    undecodable = letter.problem
    return page(request, "dead_letter.html", user=user, letter=found, key=_shown(found.key),
                key_hex=(found.key or b"").hex(), event=event, undecodable=undecodable,
                size=len(found.value or b""))


async def confirm(request: Request) -> Response:
    """Ask before replaying or releasing a parked key."""
    user = signed_in(request, OPERATOR)
    action = _action(request.path_params["action"])
    c = console(request)
    topic = _topic(c, request.query_params.get("topic", ""))
    key = _key(request.query_params.get("key", ""))
    settings = c.settings
    entry = (await dlq_admin.parked_keys(settings)).get((topic, key))
    letters = [d for d in await dlq_admin.read_dead_letters(settings, [topic])
               if d.key == key and d.source[0] == topic]
    return page(request, "confirm.html", user=user, action=action, topic=topic,
                key=_shown(key), key_hex=key.hex(), entry=entry, letters=letters)


async def act(request: Request) -> Response:
    """Replay or release a parked key, as ``relayflow dlq replay`` / ``release`` do."""
    user, form = await posted(request, OPERATOR)
    action = _action(request.path_params["action"])
    c = console(request)
    topic, key = _topic(c, form.get("topic", "")), _key(form.get("key", ""))
    if form.get("confirm") != "yes":
        raise BadInput("Not confirmed: nothing was done.")
    settings = c.settings
    if action == "release":
        entry = await dlq_admin.release(settings, topic, key)
        message = (f"{_shown(key)} on {topic} released: new records of the key flow again; "
                   "its dead letters stay on the DLQ." if entry
                   else f"{_shown(key)} on {topic} is not parked: nothing to do.")
    else:
        result = await dlq_admin.replay(settings, topic, key,
                                        parked_only=action == "replay-parked-only")
        message = {
            "replaying": f"Replay {result.replay_id}: {len(result.copied)} record(s) back on "
                         f"{topic}; the bridge releases the key after the last one.",
            "released": "Nothing to replay; the key is released.",
            "not-parked": "The key is not parked: nothing to do.",
            "in-progress": f"Replay {result.replay_id} of this key is still in progress: "
                           "nothing was done.",
        }[result.status]
    return page(request, "message.html", user=user, title=f"{action}: {_shown(key)}",
                message=message, kind="ok", back="/dead-letters")


def _action(raw: str) -> str:
    if raw not in _ACTIONS:
        raise BadInput(f"Unknown action {raw[:40]!r}.", status=404)
    return raw


ROUTES = [
    Route("/dead-letters", dead_letters, methods=["GET"]),
    Route("/dead-letters/{dlq_topic}/{partition:int}/{offset:int}", dead_letter,
          methods=["GET"]),
    Route("/parked/{action}", confirm, methods=["GET"]),
    Route("/parked/{action}", act, methods=["POST"]),
]
