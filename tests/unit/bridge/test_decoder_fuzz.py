"""Fuzzing the decoder: a routed event or one of its dead-letter reasons, never another
exception, and memory in proportion to the record (strategies in ``tests/fuzzing.py``).

In the suite each search is bounded and derandomized (the same examples every run,
nothing remembered). ``make fuzz`` sets ``RELAYFLOW_FUZZ_MINUTES``: the same searches
then run with fresh random seeds, ten times as many examples a round, round after round
until their share of the time is up, and keep what fails in ``.hypothesis/fuzz`` so the
next run replays it first.

Each search also checks it reached every rule, so a strategy that stopped producing
some kind of record fails here rather than silently testing less.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

import bridge.decoding
from bridge.decoding import DECODE_REASONS, Routed
from schemas.codec import DecodeError
from schemas.dead_letters import CODEC_REASONS, DlqReason
from tests.helpers.corpus import bad_records, routed_records
from tests.helpers.fuzzing import (
    CODEC,
    LARGE_KINDS,
    FuzzRecord,
    check_codec,
    check_decoder_and_memory,
    check_memory,
    large_records,
    records,
    values,
)

FUZZ_MINUTES = float(os.environ.get("RELAYFLOW_FUZZ_MINUTES") or 0)
"""Set by ``make fuzz``: search this long in all (0: the suite's bounded run)."""

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
BOUNDED = settings(derandomize=True, database=None, deadline=None, suppress_health_check=_HEALTH)
LONG = settings(derandomize=False, database=DirectoryBasedExampleDatabase(".hypothesis/fuzz"),
                deadline=None, print_blob=True, suppress_health_check=_HEALTH)

# A codec that knows every model never finds a schema without one; ``oversize`` needs a
# value past 512 KiB, which only the large-record search makes. The reference app's events are
# all Avro, so the JSON and Protobuf reasons are test_formats' to reach.
UNREACHABLE = {DlqReason.UNKNOWN_EVENT_TYPE, DlqReason.MALFORMED_JSON,
               DlqReason.MALFORMED_PROTOBUF}


def _rounds(share: float) -> Iterator[settings]:
    """One bounded round; under ``make fuzz``, random rounds for ``share`` of its time."""
    if not FUZZ_MINUTES:
        yield BOUNDED
        return
    deadline = time.monotonic() + FUZZ_MINUTES * 60 * share
    yield LONG
    while time.monotonic() < deadline:
        yield LONG


def search(strategy: st.SearchStrategy[Any], check: Callable[[Any], object], *, examples: int,
           share: float) -> None:
    """``check`` every example ``strategy`` makes: ``examples`` of them in the suite."""
    for base in _rounds(share):
        count = examples if base is BOUNDED else 10 * examples

        @settings(base, max_examples=count)
        @given(strategy)
        def one_round(example: Any) -> None:
            check(example)

        one_round()


def test_the_decoders_docstring_lists_its_own_reasons() -> None:
    # Its table's rows, besides the codec's: what a reader of bridge.decoding is told.
    rows = set(re.findall(r"^``([a-z-]+)``", bridge.decoding.__doc__ or "", re.MULTILINE))
    assert rows == DECODE_REASONS - CODEC_REASONS


def test_the_codec_decodes_or_gives_a_documented_reason() -> None:
    seen: set[str] = set()

    def check(value: bytes) -> None:
        outcome = check_codec(value)
        seen.add(outcome.reason if isinstance(outcome, DecodeError) else "decoded")

    search(values(), check, examples=400, share=0.3)
    assert seen == (CODEC_REASONS - UNREACHABLE) | {"decoded"}


def test_the_decoder_routes_or_dead_letters_any_record() -> None:
    seen: set[str] = set()

    def check(record: Any) -> None:
        outcome = check_decoder_and_memory(record)
        seen.add(outcome.route.action if isinstance(outcome, Routed) else outcome.reason)

    search(records(), check, examples=600, share=0.5)
    searched = set(seen)
    # Coverage must not hang on which examples a run happens to draw (they differ with what
    # ran before in the process): the hostile corpus has a record for every reason, so the
    # property also holds on each of those, and together they reach every outcome.
    # and one valid record per route reaches each action.
    for known in [*bad_records(CODEC), *routed_records(CODEC)]:
        check(FuzzRecord(known.topic, 0, 0, known.key, known.value, list(known.headers)))
    assert seen == (DECODE_REASONS - UNREACHABLE) | {"start", "cancel", "signal"}
    # The search itself keeps its reach: all but one or two reasons (``oversize`` needs the
    # large-record search), so a weakened generator still fails here.
    assert len(searched) >= len(seen) - 3, f"the search alone reached only {sorted(searched)}"


# In the suite, ``longest-order`` (a second under tracemalloc) is test_codec's regression test.
@pytest.mark.parametrize("kind", [kind for kind in LARGE_KINDS
                                  if FUZZ_MINUTES or kind != "longest-order"])
def test_the_largest_records_cost_memory_in_proportion(kind: str) -> None:
    search(large_records(kind), check_memory, examples=3, share=0.2 / len(LARGE_KINDS))
