"""In CI, a skipped test is a failed test unless it is allowed, with a reason.

A skip says "this did not run"; a run that exits 0 with skipped tests looks
green while the skipped checks proved nothing (the fault tests that restart
Kafka or Temporal skip whenever the session's stack is not its own local dev
stack). With ``RELAYFLOW_NO_SKIPS=1`` (``.ci/run`` sets it; when it is unset,
``CI`` being set turns it on), every skip, at collection or in a test, is
reported as a failure carrying its reason, unless its node id starts with an
entry of the ``relayflow_allowed_skips`` ini list, each written
``node-id-prefix: why it may skip in CI``. ``RELAYFLOW_NO_SKIPS=0`` turns it
off explicitly. ``xfail`` is not a skip and is left alone.

The allowlist is empty today. Reviewed (``grep -rn "pytest.skip\\|skipif" tests``):
the restart tests in ``tests/faults`` must run (``.ci/run`` picks the local dev
stack), and the browser (``make browser``), ``promtool`` (``make prometheus``)
and ``openssl`` (the machine's toolchain) are all present where ``make test``
runs, so none of their skips is expected in CI.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Final

import pytest

ALLOWLIST_INI = "relayflow_allowed_skips"
FLAG = "RELAYFLOW_NO_SKIPS"
# A name, not a literal: mypy 1.20 reads a string literal given to pytest 9's
# ``addini(type=...)`` as a TypeForm and refuses it.
_LINELIST: Final = "linelist"


def pytest_addoption(parser: pytest.Parser) -> None:
    usage = f"lines 'node-id-prefix: justification': tests that may skip when {FLAG} is on"
    parser.addini(ALLOWLIST_INI, usage, type=_LINELIST, default=[])


def skips_forbidden() -> bool:
    """Whether a skip fails the run: ``RELAYFLOW_NO_SKIPS`` says so, else ``CI`` being set."""
    flag = os.environ.get(FLAG)
    if flag is not None:
        return flag.strip() not in {"", "0", "false"}
    return bool(os.environ.get("CI"))


def allowed_skips(config: pytest.Config) -> dict[str, str]:
    """The allowlist: node-id prefix to its justification (an entry without one is an error)."""
    entries: dict[str, str] = {}
    for line in config.getini(ALLOWLIST_INI):
        prefix, _, why = str(line).partition(": ")  # node ids hold "::", never ": "
        if not prefix.strip() or not why.strip():
            msg = f"{ALLOWLIST_INI}: {line!r} is not 'node-id-prefix: justification'"
            raise pytest.UsageError(msg)
        entries[prefix.strip()] = why.strip()
    return entries


UNEXPECTED = pytest.StashKey[list[str]]()
"""The run's unexpected skips, ``node id: reason``, for the terminal summary."""


def pytest_configure(config: pytest.Config) -> None:
    allowed_skips(config)  # a malformed allowlist is a usage error before anything runs
    config.stash[UNEXPECTED] = []


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    if isinstance(report.longrepr, tuple):  # (path, line, "Skipped: reason")
        path, line, message = report.longrepr
        return f"{message.removeprefix('Skipped: ')} ({path}:{line})"
    return str(report.longrepr)


def _fail_unexpected_skip(config: pytest.Config,
                          report: pytest.TestReport | pytest.CollectReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail") or not skips_forbidden():
        return
    if any(report.nodeid.startswith(prefix) for prefix in allowed_skips(config)):
        return
    reason = _reason(report)
    config.stash[UNEXPECTED].append(f"{report.nodeid}: {reason}")
    report.outcome = "failed"
    report.longrepr = (f"skipped in CI: {reason}; not in {ALLOWLIST_INI}, and {FLAG} (or CI) "
                       "makes a skip a failure")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _fail_unexpected_skip(item.config, report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector,
                               ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    _fail_unexpected_skip(collector.config, report)
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    if unexpected := config.stash.get(UNEXPECTED, []):
        terminalreporter.section(f"unexpected skips ({FLAG} or CI): failures")
        for line in unexpected:
            terminalreporter.line(line)
