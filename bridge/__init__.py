"""The Kafka → Temporal bridge.

Where each concern lives:

* ``routes``: the routing table (event type → workflow, id template, action).
* ``decoding``: every validation rule of an input record, and its DLQ reason.
* ``commands``: the Temporal call for each action; transient vs permanent failures.
* ``consumer``: per-key scheduling of a batch, retries, the commit discipline.
* ``offsets``: which offsets a batch may commit, where each partition resumes.
* ``dlq``: dead-letter records (original bytes and headers plus ``dlq-*``).
* ``app``: the FastStream wiring, ``create_app`` and ``run_bridge``.
"""
