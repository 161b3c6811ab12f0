"""The operator tools serve the configured application, not the reference's topics or workflows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bridge.parking import ParkEntry
from examples.tickets.app import APP as TICKETS
from relayflow.config.settings import Settings
from relayflow.devstack.kafka import app_topics
from relayflow.kafka.reads import StoredRecord
from relayflow.operate.dlq import DlqListing, input_topics
from relayflow.operate.records import ShownRecord, key_text
from relayflow.operate.status import queries_of, workflow_ids
from relayflow.reference.app import APP

TICKETS_SETTINGS = Settings(app="examples.tickets.app:APP")


def test_keys_are_text_and_bytes_that_are_not_utf8_are_escaped_visibly() -> None:
    assert key_text(b"T-1") == "T-1"
    assert key_text("Zoë".encode()) == "Zoë"
    assert key_text(b"ab\xff\x00") == "ab\\xff\x00"
    assert key_text(None) == ""
    record = StoredRecord("tickets.events", 0, 1, b"\xfe-k", b"", ())
    assert ShownRecord(record).key == "\\xfe-k"


def test_the_configured_application_names_the_topics() -> None:
    assert input_topics(TICKETS_SETTINGS) == ("tickets.events",)
    assert app_topics(TICKETS_SETTINGS) == TICKETS.all_topics()
    assert input_topics(Settings()) == APP.input_topics  # the default application


def test_a_listing_says_which_dead_letter_topics_it_read_and_shows_keys_as_text() -> None:
    entry = ParkEntry(reason="truncated", source_partition=1, source_offset=7,
                      dlq_partition=1, dlq_offset=3, parked_at=datetime.now(UTC))
    listing = DlqListing(("tickets.events",), (), {("tickets.events", b"T\xff"): entry})
    assert listing.dlq_topics == ("tickets.events.dlq",)
    [parked] = listing.parked_json()
    assert (parked["topic"], parked["key"], parked["reason"]) == \
        ("tickets.events", "T\\xff", "truncated")


def test_status_asks_the_queries_the_applications_workflows_define() -> None:
    # The reference chooses and orders them (StatusQueries); without that, every query
    # without arguments of the workflow's class.
    names = {kind: [name for name, _ in queries] for kind, queries in queries_of(APP).items()}
    assert names == {"OrderSaga": ["status", "approval"], "BatchWorkflow": ["progress"],
                     "ChunkWorkflow": []}
    assert queries_of(TICKETS) == {"TicketWorkflow": ()}
    bare = replace(APP, extensions=())
    names = {kind: [name for name, _ in queries] for kind, queries in queries_of(bare).items()}
    assert names == {"OrderSaga": ["approval", "status"], "BatchWorkflow": ["progress"],
                     "ChunkWorkflow": []}
    assert workflow_ids(TICKETS, "T-1") == ["ticket-T-1"]
