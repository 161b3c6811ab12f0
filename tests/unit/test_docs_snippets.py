"""The Python blocks of README.md and docs/ run, so the docs cannot rot.

Each page's ```python blocks run in order in one namespace, like a doctest.
A block right after ``<!-- not-run: <reason> -->`` (it needs a running Kafka or
Temporal) is only compiled. A block of ``--8<-- "path"`` lines (pymdownx.snippets,
code included from the repository) imports each included module, and its
public names join the page's namespace. A block with a title
(```` ```python title="loans/app.py" ````) is a file of a project the page
builds, not a snippet: it is only compiled here, and the test that follows the
page (tests/integration/test_docs_walkthrough.py) writes and runs the files.
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

MOST_NOT_RUN = 8
"""Blocks that only compile are exceptions: keep them few."""

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_NOT_RUN = re.compile(r"^\s*<!-- not-run: (?P<reason>\S.*?) -->\s*$")
_TITLE = re.compile(r'\btitle="(?P<title>[^"]+)"')
_INCLUDE = re.compile(r'^--8<-- "(?P<path>[^":]+)(?::[^"]*)?"$')


@dataclass(frozen=True)
class Block:
    """One fenced Python block.

    Attributes:
        page: The Markdown file.
        line: Line number of its first code line.
        code: The code, dedented to the fence.
        not_run: Why it only compiles, or None when it runs.
        file: The block's title when it is a file of a project, else None.
    """

    page: Path
    line: int
    code: str
    not_run: str | None
    file: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def includes(self) -> list[str]:
        """The repository files the block includes, when it is only includes."""
        lines = [line.strip() for line in self.code.splitlines() if line.strip()]
        found = [_INCLUDE.match(line) for line in lines]
        return [match["path"] for match in found if match] if all(found) and found else []


def python_blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page`` whose language is Python, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        language = (opening["info"].split() or [""])[0].lower()
        end = index + 1
        while end < len(lines) and not re.fullmatch(
                rf"[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*", lines[end]):
            end += 1
        if language in {"python", "py"}:
            previous = next((line for line in reversed(lines[:index]) if line.strip()), "")
            marker = _NOT_RUN.match(previous)
            code = "\n".join(line[indent:] for line in lines[index + 1:end])
            title = _TITLE.search(opening["info"])
            blocks.append(Block(page, index + 2, code, marker["reason"] if marker else None,
                                title["title"] if title else None))
        index = end + 1
    return blocks


def _run_include(path: str, namespace: dict[str, object]) -> None:
    file = ROOT / path
    assert file.is_file(), f"{path} is included but does not exist"
    if file.suffix != ".py":
        return
    module = importlib.import_module(".".join(file.relative_to(ROOT).with_suffix("").parts))
    namespace.update({name: value for name, value in vars(module).items()
                      if not name.startswith("_")})


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_the_python_blocks_of_a_page_run(page: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_snippet_{page.stem}"}
    for block in python_blocks(page):
        if block.includes:
            for path in block.includes:
                _run_include(path, namespace)
            continue
        # Named after the page and line, so a traceback points at the snippet that rotted.
        compiled = compile(block.code, block.where, "exec")
        if block.not_run is None and block.file is None:
            exec(compiled, namespace)


def test_few_blocks_are_left_unrun() -> None:
    unrun = [block.where for page in PAGES for block in python_blocks(page) if block.not_run]
    assert len(unrun) <= MOST_NOT_RUN, f"too many not-run blocks: {unrun}"


def test_a_not_run_marker_stands_right_before_a_python_block() -> None:
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if line.lstrip().startswith("<!-- not-run"):
                assert _NOT_RUN.match(line), f"{page.name}:{number + 1}: give a reason"
                following = next((text for text in lines[number + 1:] if text.strip()), "")
                assert re.match(r"\s*(`{3,}|~{3,})\s*(python|py)\b", following), (
                    f"{page.name}:{number + 1}: the marker is not followed by a python block")


def test_blocks_are_found_with_their_markers_and_indentation(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("Text\n\n```python\nx = 1\n```\n\n<!-- not-run: needs Kafka -->\n"
                    "```python\nconnect()\n```\n\n```bash\nls\n```\n\n"
                    "* item\n\n    ```py\n    y = x + 1\n    ```\n\n"
                    '```python\n--8<-- "examples/tickets/app.py"\n```\n\n'
                    '```python title="loans/app.py"\nfrom loans.events import X\n```\n',
                    encoding="utf-8")
    blocks = python_blocks(page)
    assert [(block.line, block.code, block.not_run, block.file) for block in blocks] == [
        (4, "x = 1", None, None), (9, "connect()", "needs Kafka", None),
        (19, "y = x + 1", None, None), (23, '--8<-- "examples/tickets/app.py"', None, None),
        (27, "from loans.events import X", None, "loans/app.py")]
    assert blocks[3].includes == ["examples/tickets/app.py"]


def test_a_titled_block_is_a_file_compiled_not_run(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "project.md"
    page.write_text('```python title="loans/app.py"\nfrom loans.events import X\n```\n\n'
                    '```python title="loans/bad.py"\ndef broken(:\n```\n', encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(SyntaxError, match="invalid syntax"):
        test_the_python_blocks_of_a_page_run(page)


def test_a_raising_block_fails_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "broken.md"
    page.write_text("```python\nraise ValueError('rotted')\n```\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(ValueError, match="rotted"):
        test_the_python_blocks_of_a_page_run(page)
