"""The Kafka → Temporal bridge, reusable by any application.

It imports only the contract (``schemas``) and refers to workflows by name;
the composition root hands it a ``BridgeConfig`` and connected clients.
Where each concern lives:

* ``config``: what the bridge is given (its settings, a Kafka client factory).
* ``routes``: routing as data (event type → workflow, id template, action).
* ``decoding``: every validation rule of an input record, and its DLQ reason.
* ``failures``: transient (retry later) vs permanent (dead-letter) failures.
* ``commands``: the Temporal call for each action, and what its errors mean.
* ``retry``: backoff, per-dependency health, a fetch's deadline.
* ``consumer``: per-key scheduling of a fetch, retries, the commit discipline.
* ``offsets``: which offsets a fetch may commit, where each partition resumes.
* ``dead_letters``: dead-letter records (original bytes and headers plus ``dlq-*``).
* ``parking``: parked keys, so a dead letter never lets later records of its key pass.
* ``consumed``: the shape of a consumed record.
* ``app``: the FastStream wiring, ``create_app`` and ``serve``.
"""
