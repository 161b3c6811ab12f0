"""What security costs: the bridge over SASL_SSL with payload encryption, against plaintext without.

Side by side in one run, on one Temporal: the bridge starts ``BenchNoop``
workflows (no worker: only the start is measured, as in start_throughput)
for a burst of events

* plaintext: the bench stack's broker, no payload encryption;
* secured: a broker of ``relayflow dev up --secure``'s beside it (SASL_SSL,
  SCRAM-SHA-512, a client certificate), the Temporal client encrypting every
  payload (AES-256-GCM).

The two alternate round by round, in alternating order (plaintext first,
then secured first, ...: ``bench.common.alternating``), so both meet the same
load and neither always meets the busier server (no worker runs, so the
server's SQLite grows with every burst); the ratio is of the medians, which
over an even number of rounds a steady slow-down leaves alike. Then the
payload codec alone: microseconds per payload to encrypt and to decrypt an
``OrderPlaced`` envelope as the bridge sends it.

    python -m bench.secured [--events 1000] [--rounds 4] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import SecretStr
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.common import alternating, bench_stack, orders, record, table
from bench.start_throughput import argument, bridge_rate
from devtools.secured_kafka import SecuredKafka, secured_kafka
from relayflow.config.settings import Settings
from relayflow.reference.app import APP
from relayflow.temporal.payload_codec import new_key_entry, payload_codec


async def codec_cost(settings: Settings, payloads: int) -> tuple[float, float, int]:
    """Microseconds per payload to encrypt and to decrypt, and the bytes it adds."""
    codec = payload_codec(settings)
    assert codec is not None
    plain = [pydantic_data_converter.payload_converter.to_payloads([argument(event)])[0]
             for event in orders(payloads)]
    started = time.perf_counter()
    encrypted = await codec.encode(plain)
    encrypt = time.perf_counter() - started
    started = time.perf_counter()
    await codec.decode(encrypted)
    decrypt = time.perf_counter() - started
    added = sum(e.ByteSize() - p.ByteSize() for e, p in zip(encrypted, plain, strict=True))
    return 1e6 * encrypt / payloads, 1e6 * decrypt / payloads, added // payloads


PLAIN, SECURED = "plaintext", "SASL_SSL + encryption"


@contextmanager
def _broker(plain: Settings, given: SecuredKafka | None) -> Iterator[SecuredKafka]:
    """``given``, or a secured broker of this run's own beside the plaintext one."""
    if given is not None:
        yield given
        return
    with tempfile.TemporaryDirectory() as folder, \
            secured_kafka(plain, Path(folder), APP.all_topics()) as secured:
        yield secured


async def main(args: argparse.Namespace,
               broker: SecuredKafka | None = None) -> dict[str, list[float]]:
    """Rates per variant, round by round, and the codec's cost.

    Args:
        args: The command line's options.
        broker: A secured broker already running beside the stack (the test
            session's), with the application's topics; default: one of this run's own.
    """
    rates: dict[str, list[float]] = {PLAIN: [], SECURED: []}
    with bench_stack() as plain, _broker(plain, broker) as secured:
        # The super user: ACLs are not what is measured, the protocol and the codec are.
        safe = secured.as_principal("admin", payload_encryption_keys=SecretStr(
            new_key_entry("bench")))
        variants = {PLAIN: (plain, "plain"), SECURED: (safe, "safe")}
        for number, order in alternating(list(variants), args.rounds):
            for variant in order:
                settings, tag = variants[variant]
                rates[variant].append(await bridge_rate(settings, f"{tag}{number}", args.events,
                                                        args.concurrency))
        encrypt, decrypt, added = await codec_cost(safe, args.payloads)
    return rates | {"codec": [encrypt, decrypt, float(added)]}


def report(results: dict[str, list[float]], args: argparse.Namespace) -> str:
    """The table and the ratio."""
    variants = (PLAIN, SECURED)
    medians = {v: statistics.median(results[v]) for v in variants}
    ratio = medians[SECURED] / medians[PLAIN]
    encrypt, decrypt, added = results["codec"]
    lines = [table("Bridge start throughput with and without security (starts per second)",
                   ["variant", "rounds", "median starts/s", "min", "max", "round by round"],
                   [(v, len(results[v]), medians[v], min(results[v]), max(results[v]),
                     " ".join(f"{rate:.1f}" for rate in results[v])) for v in variants]), "",
             table("Payload codec (AES-256-GCM) per OrderPlaced envelope",
                   ["encrypt (us)", "decrypt (us)", "bytes added"],
                   [(encrypt, decrypt, int(added))]), "",
             (f"secured/plaintext: {ratio:.2f}x (goal >= 0.9x; {args.events} events a round, "
              f"concurrency {args.concurrency})")]
    record("secured", vars(args), {"rates": results, "ratio": ratio})
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=4,
                        help="the order alternates round by round (keep it even)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--payloads", type=int, default=2000)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    print(report(asyncio.run(main(arguments)), arguments))
