"""relayflow's web console: approvals for those who decide, the rest for those who operate.

An approvals inbox; orders, batches, dead letters and parked keys. A
server-rendered Starlette application (Jinja templates, htmx vendored in
``static/``: no Node build step), served by ``relayflow console`` and
``relayflow run --console``. It reads Temporal (queries, histories, lists),
Kafka (outcome and dead-letter topics) and the store (batch failures), and
writes only decisions to ``approvals.decisions`` and what ``relayflow dlq``
writes (replays, parked keys).
"""

from relayflow.console.app import console_url, create_app, running_console
from relayflow.console.users import OPERATOR, User, UserDirectory, hash_password, load_users

__all__ = ["OPERATOR", "User", "UserDirectory", "console_url", "create_app", "hash_password",
           "load_users", "running_console"]
