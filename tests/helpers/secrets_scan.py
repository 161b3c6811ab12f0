"""Scanning what processes wrote for secrets, and checking the scan had something to read.

A scan that finds nothing proves little if the places it read were empty, or
were filled by a run that never took the secured path. So ``Written`` keeps
every place by name and ``Written.assert_filled`` requires, of each place a
test names, that it holds text and the markers that prove what ran (a log
line of the secured connection, the terminator's record of a call, ...).
"""

from __future__ import annotations

import base64
import re
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Secret", "Written"]


def _b64(raw: bytes, *, urlsafe: bool = False) -> bytes:
    encoded = base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)
    return encoded.rstrip(b"=")  # padded or not


@dataclass(frozen=True)
class Secret:
    """A secret and the forms it could leak in.

    Attributes:
        name: What it is.
        forms: Form name → bytes to look for.
    """

    name: str
    forms: dict[str, bytes]

    @classmethod
    def text(cls, name: str, value: str) -> Secret:
        """A password, API key or token: as it is, and in base64."""
        return cls(name, {"text": value.encode(), "base64": _b64(value.encode())})

    @classmethod
    def key(cls, name: str, raw: bytes) -> Secret:
        """Key bytes: raw, base64 (both alphabets), hex (both cases)."""
        return cls(name, {"bytes": raw, "base64": _b64(raw),
                          "url-safe base64": _b64(raw, urlsafe=True),
                          "hex": raw.hex().encode(), "HEX": raw.hex().upper().encode()})

    @classmethod
    def pem_key(cls, name: str, path: Path) -> Secret:
        """A private key's PEM file: each base64 line of the key block."""
        block = re.search(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----(.+?)-----END",
                          path.read_bytes(), re.DOTALL)
        assert block is not None, path
        lines = [line.strip() for line in block[1].splitlines() if len(line.strip()) >= 16]
        return cls(name, {f"PEM line {n}": line for n, line in enumerate(lines, start=1)})


@dataclass
class Written:
    """Everything a run wrote, by where it was found."""

    places: dict[str, bytes] = field(default_factory=dict)

    def add(self, where: str, data: str | bytes) -> None:
        """Keep ``data`` (appended to what ``where`` already holds)."""
        more = data.encode() if isinstance(data, str) else data
        self.places[where] = self.places.get(where, b"") + b"\n" + more

    def add_error(self, where: str, error: BaseException) -> None:
        """An exception's ``str``, ``repr`` and traceback with every exception in its chain."""
        self.add(where, f"{error}\n{error!r}\n{''.join(traceback.format_exception(error))}")

    def add_logs(self, where: str, folder: Path) -> None:
        """Every ``*.log`` file under ``folder`` (configuration files are not logs)."""
        for path in sorted(folder.rglob("*.log")):
            self.add(f"{where}/{path.relative_to(folder)}", path.read_bytes())

    def leaks(self, secrets: Iterable[Secret]) -> list[str]:
        """``<secret> (<form>) in <place>`` for every form of every secret found anywhere."""
        return [f"{secret.name} ({form}) in {where}"
                for secret in secrets for form, value in secret.forms.items()
                for where, data in self.places.items() if value in data]

    def assert_filled(self, markers: Mapping[str, Sequence[str | bytes]]) -> None:
        """Assert each named place was read, holds more than blanks, and holds its markers.

        Args:
            markers: Place → what it must contain to prove the run it records
                took the path under test (none: only that it is not empty).
        """
        problems = []
        for where, wanted in markers.items():
            data = self.places.get(where)
            if data is None or not data.strip():
                problems.append(f"{where}: {'never read' if data is None else 'empty'}")
                continue
            problems += [f"{where}: no {marker!r}" for marker in wanted
                         if (marker.encode() if isinstance(marker, str) else marker) not in data]
        assert not problems, "the scan read too little:\n" + "\n".join(problems)
