"""Entity workflows: events per second into one entity (a hot key) vs spread over many.

Both runs go through relayflow's bridge and worker (in this process) to an
entity workflow (``EntityWorkflow``) routed by signal-with-start with
``batch``: the same number of events, produced as fast as the producer
batches them, timed from the first send until every entity has applied its
share (one query per entity once the bridge's group has committed to the end).

* one entity: every event has the same key; the bridge sends consecutive
  records as one signal of up to the route's ``batch`` events, and the entity
  continues as new as its history grows.
* many entities: the same events over ``--keys`` keys; more signals (fewer
  consecutive records per key in a fetch), spread over partitions and
  workflows.

The application is loaded by name (``--app``, default the tallies test
application, whose route batches 500 events a signal), as ``relayflow run
--app`` does: a route with ``batch``, on an event type with an ``amount`` and
a ``seq`` field.

    python -m bench.entities [--events 20000] [--keys 200] [--app module:attribute]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from temporalio.client import Client

from bench.common import bench_stack, record, table
from relayflow import ENTITY_QUERY, Application, EntityView, load_application
from relayflow.config.settings import Settings
from relayflow.devstack import ensure_topics
from relayflow.kafka.reads import committed_to_end, partitions_of, start_group_at_end
from relayflow.runtime.bootstrap import connect_temporal, running
from relayflow.runtime.clients import kafka_clients
from schemas.framing import to_record


def _entity_route(app: Application) -> tuple[str, type, str]:
    """The topic, event type and id template of the app's batched route."""
    [route] = [r for r in app.routes if r.batch is not None]
    return route.topic, route.event_type, route.workflow_id


async def _produce(settings: Settings, app: Application, keys: Sequence[str], events: int) -> None:
    topic, event_type, template = _entity_route(app)
    key_field = template[template.index("{") + 1:template.index("}")]
    codec = app.codec()
    producer = kafka_clients(settings).producer(linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        sends = []
        for n in range(events):
            key = keys[n % len(keys)]
            event = event_type(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                               amount=1, seq=n // len(keys), **{key_field: key})
            rec = to_record(event, codec)
            sends.append(await producer.send(topic, rec.value, key=rec.key, headers=rec.headers))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def _applied(client: Client, workflow_id: str) -> int:
    view: EntityView = await client.get_workflow_handle(workflow_id).query(
        ENTITY_QUERY, result_type=EntityView)
    return view.applied


async def _run(settings: Settings, app: Application, client: Client, keys: Sequence[str],
               events: int) -> tuple[float, int]:
    """Seconds until every entity applied its share; the number of runs of the first one."""
    _, _, template = _entity_route(app)
    key_field = template[template.index("{") + 1:template.index("}")]
    ids = [template.format_map({key_field: key}) for key in keys]
    kafka = kafka_clients(settings)
    started = time.perf_counter()
    await _produce(settings, app, keys, events)
    await committed_to_end(kafka, settings.kafka_consumer_group,
                           await partitions_of(kafka, app.input_topics))
    share = events // len(keys)
    for workflow_id in ids:  # acknowledged signals are applied within one workflow task
        while await _applied(client, workflow_id) < share:  # noqa: ASYNC110 - a query
            await asyncio.sleep(0.05)
    took = time.perf_counter() - started
    runs = [w async for w in client.list_workflows(f"WorkflowId = '{ids[0]}'")]
    return took, len(runs)


async def main(events: int, keys: int, app_name: str) -> str:
    """Run both measures; returns the printed report."""
    app = load_application(app_name)
    with bench_stack() as base:
        suffix = uuid.uuid4().hex[:6]
        settings = base.model_copy(update={"app": app_name, "task_queue": f"bench-{suffix}",
                                           "kafka_consumer_group": f"bench-{suffix}"})
        await asyncio.to_thread(ensure_topics, settings, app.all_topics())
        await start_group_at_end(kafka_clients(settings), settings.kafka_consumer_group,
                                 app.input_topics)
        client = await connect_temporal(settings)
        async with running(settings, app):
            one, one_runs = await _run(settings, app, client, [f"one-{suffix}"], events)
            many, _ = await _run(settings, app, client,
                                 [f"many-{suffix}-{n}" for n in range(keys)], events)
    rows = [("one entity (hot key)", 1, events, one, events / one, one_runs),
            (f"{keys} entities", keys, events, many, events / many, "")]
    ratio = (events / one) / (events / many)
    out = (table(f"Entity workflows: {events:,} events",
                 ["run", "entities", "events", "seconds", "events/s",
                  "runs of the first entity"], rows)
           + f"\n\none entity / many entities: {ratio:.2f}x")
    print(out)
    record("entities", {"events": events, "keys": keys, "app": app_name},
           {"one_per_s": events / one, "many_per_s": events / many, "one_runs": one_runs,
            "ratios": {"one entity / many entities": ratio}})
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--app", default="tests.helpers.tallies.app:APP")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.events, arguments.keys, arguments.app))
