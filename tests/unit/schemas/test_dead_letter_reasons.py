"""The ``dlq-reason`` values: one table in the contract, the same in the docs."""

from __future__ import annotations

import re
from pathlib import Path

from schemas.dead_letters import CODEC_REASONS, DlqReason

PAGE = Path(__file__).resolve().parents[3] / "docs" / "concepts" / "dead-letters.md"
"""The docs page whose ``## Reasons`` table lists them."""

CONTRACT = [
    "empty", "unknown-framing", "truncated", "unknown-schema", "unknown-event-type",
    "malformed-avro", "malformed-json", "malformed-protobuf", "invalid-event", "oversize",
    "bad-header", "bad-key", "header-mismatch", "no-route", "reply-to-refused",
    "target-not-found", "target-closed", "rejected", "parked", "internal-error",
]
"""Every value other teams may see, written out: renaming one breaks their consumers."""


def listed_reasons(text: str) -> list[str]:
    """The values the first column of the page's ``dlq-reason`` table names, in order."""
    section = text.split("\n## Reasons\n", 1)[1].split("\n## ", 1)[0]
    table = section.split("\n| `dlq-reason` |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| (.+?) \|", table, re.MULTILINE)
    return [name for row in rows for name in re.findall(r"`([^`]+)`", row)]


def test_the_values_are_the_contract_s() -> None:
    assert [reason.value for reason in DlqReason] == CONTRACT
    # Two members with one value would make the second an alias, silently.
    assert len(DlqReason.__members__) == len(CONTRACT)


def test_each_reason_says_in_one_line_what_caused_it_and_whether_replay_helps() -> None:
    for reason in DlqReason:
        assert reason.description, reason
        assert "\n" not in reason.description, reason
        assert "replay" in reason.description, reason


def test_the_codec_gives_the_reasons_of_an_undecodable_value() -> None:
    assert {str(reason) for reason in CODEC_REASONS} == {
        "empty", "unknown-framing", "truncated", "unknown-schema", "unknown-event-type",
        "malformed-avro", "malformed-json", "malformed-protobuf", "invalid-event"}


def test_the_docs_table_lists_exactly_the_reasons() -> None:
    listed = listed_reasons(PAGE.read_text(encoding="utf-8"))
    assert len(listed) == len(set(listed)), "a reason is listed twice"
    assert set(listed) - set(DlqReason) == set(), "the docs list a reason the bridge never gives"
    assert set(DlqReason) - set(listed) == set(), "a reason is missing from the docs' table"


def test_the_parser_reads_a_table_of_reasons() -> None:
    text = ("intro\n\n## Reasons\n\nSome text with `oversize`.\n\n"
            "| `dlq-reason` | meaning |\n| --- | --- |\n| `empty`, `truncated` | bad `x` |\n"
            "| `parked` | later |\n\nAfter the table: `no-route`.\n\n## Next\n| `bad-key` | x |\n")
    assert listed_reasons(text) == ["empty", "truncated", "parked"]
