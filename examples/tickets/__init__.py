"""Support tickets: a small application on relayflow, as a team would write it in its own package.

A ``TicketOpened`` starts a ``TicketWorkflow`` that assigns an agent and waits
for the ``TicketAnswered`` signal; it ends with ``TicketResolved``, or with
``TicketExpired`` when nobody answered in time. The contract lives in
``schemas/`` (``.avsc``, namespace ``tickets.events``) and ``events.py``, the
routes and topics in ``app.py``. Run it with
``relayflow run --app examples.tickets.app:APP``.
"""
