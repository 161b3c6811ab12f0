"""The operator service layer: each operator action once, for the CLI and the console alike.

One module per action: ``send``, ``tail``, ``status``, ``top``, ``dlq``
(list, show, replay, release), ``verify``, ``decide`` and ``approvals``,
``batches``, ``activities`` (pause, unpause, reset); the front ends
(``relayflow.cli``, ``relayflow.console``) only read input and show
results. Every call to Kafka, Temporal, a worker (queries) or a metrics
endpoint is bounded
(``RELAYFLOW_OPERATOR_TIMEOUT_SECONDS`` or ``--timeout``), and a dependency
that does not answer ends the command with one line naming it and exit
status 3 (``deadlines``).

Exit statuses of these commands: 0 done; 1 not found or nothing to do (no
such order, no pending approval, no such topic); 2 bad input (invalid JSON,
an event that fails validation, a bad option or setting); 3 a dependency did
not answer in time.
"""
