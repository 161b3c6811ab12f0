"""The hostile corpus mixed into a valid stream, through real bridge and worker processes.

Every bad record must end on its topic's DLQ with the expected reason and
its original value untouched; every good one must complete; nothing else
may happen (``relayflow verify`` on both key families).
"""

from __future__ import annotations

import asyncio
import random

import pytest

from relayflow.operate.dlq import read_dead_letters
from relayflow.operate.verify import VerifyReport, verify_until_settled
from relayflow.reference.topics import INPUT_TOPICS
from tests.faults.rig import CODEC, Rig
from tests.helpers.corpus import bad_records, good_records, mixed_stream

pytestmark = [pytest.mark.timeout(480)]


async def test_every_bad_record_is_dead_lettered_with_its_reason_and_every_good_one_completes(
    rig: Rig,
) -> None:
    seed = random.randrange(10**9)  # keys must be new on a shared stack
    limit = rig.settings.max_payload_bytes
    bad = bad_records(CODEC, seed=seed, max_payload_bytes=limit)
    good = good_records(CODEC, 60, seed=seed)
    stream = mixed_stream(CODEC, bad=bad, good=good, seed=seed)
    assert len([r for r in bad if r.expected_reason]) >= 60
    rig.worker()
    rig.bridge()

    sends = [await rig.producer.send(r.topic, r.value, key=r.key, headers=r.headers)
             for r in stream]
    landed = {(r.topic, m.partition, m.offset): r
              for r, m in zip(stream, await asyncio.gather(*sends), strict=True)}

    # Rejected records: each on the DLQ, by its source coordinates.
    rejected = {c: r for c, r in landed.items() if r.expected_reason}
    letters: dict[tuple[str, int, int], str] = {}
    for _ in range(120):
        found = await read_dead_letters(rig.settings, INPUT_TOPICS)
        letters = {d.source: d.reason for d in found if d.source in rejected}
        if len(letters) == len(rejected):
            break
        await asyncio.sleep(1)
    wrong = {rejected[c].name: (rejected[c].expected_reason, letters.get(c))
             for c in rejected if letters.get(c) != rejected[c].expected_reason}
    assert not wrong, f"expected vs dead-letter reason: {wrong}"

    # Accepted records: each order completes, exactly once, nothing lost.
    reports: dict[str, VerifyReport] = {}
    for prefix in (f"good-s{seed}-", f"corpus-s{seed}-"):
        reports[prefix] = await verify_until_settled(rig.settings, key_prefix=prefix,
                                                     wait_seconds=180)
        assert reports[prefix].ok, reports[prefix].summary()
        assert reports[prefix].open == []
    assert reports[f"good-s{seed}-"].settled["OrderCompleted"] == len(good)
    accepted_variants = [r for r in bad if not r.expected_reason]
    assert accepted_variants
    assert reports[f"corpus-s{seed}-"].settled["OrderCompleted"] == len(accepted_variants)
