"""In CI an unexpected skip fails the run: a tiny suite run by pytester under the flag."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SUITE = """
import pytest

def test_runs():
    assert True

def test_needs_a_tool():
    pytest.skip("the tool is not installed")

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_known_bug():
    assert False
"""


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *,
         flag: str | None, ci: str | None = None, allowed: str = "") -> pytest.RunResult:
    for name, value in (("RELAYFLOW_NO_SKIPS", flag), ("CI", ci)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    pytester.makepyfile(test_suite=SUITE)
    pytester.makeini(f"[pytest]\nasyncio_default_fixture_loop_scope = function\n"
                     f"relayflow_allowed_skips =\n    {allowed}\n")
    return pytester.runpytest("-p", "tests.helpers.skips", "-ra")


def test_an_unexpected_skip_fails_the_run_with_its_reason(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(pytester, monkeypatch, flag="1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1, xfailed=1)
    result.stdout.fnmatch_lines([
        "*= unexpected skips (RELAYFLOW_NO_SKIPS or CI): failures =*",
        "test_suite.py::test_needs_a_tool: the tool is not installed (*test_suite.py:7)",
        "FAILED test_suite.py::test_needs_a_tool - skipped in CI: *",
    ])


def test_ci_alone_turns_it_on(pytester: pytest.Pytester,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(pytester, monkeypatch, flag=None, ci="true")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1, xfailed=1)


def test_a_skip_at_collection_fails_too(pytester: pytest.Pytester,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYFLOW_NO_SKIPS", "1")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_module='import pytest\npytest.importorskip("no_such_module")\n')
    result = pytester.runpytest("-p", "tests.helpers.skips")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error stops the run
    result.stdout.fnmatch_lines(["*skipped in CI*no_such_module*"])


def test_an_allowlisted_skip_passes(pytester: pytest.Pytester,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(pytester, monkeypatch, flag="1",
                  allowed="test_suite.py::test_needs_a_tool: the tool is optional in CI")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, skipped=1, xfailed=1)


def test_an_allowlist_entry_needs_a_justification(pytester: pytest.Pytester,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(pytester, monkeypatch, flag="1", allowed="test_suite.py::test_needs_a_tool")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_without_the_flag_a_skip_is_a_skip(pytester: pytest.Pytester,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(pytester, monkeypatch, flag="0", ci="true")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, skipped=1, xfailed=1)
