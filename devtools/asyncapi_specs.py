"""The official AsyncAPI JSON Schema, to validate relayflow's AsyncAPI document against.

The AsyncAPI initiative publishes its specification's JSON Schemas in the npm
package ``@asyncapi/specs`` (what its parser and CLI validate with). It is
fetched once with ``npm pack`` into the cache, pinned by version and by the
registry's sha512 integrity, and read from the tarball: ``schemas/3.0.0.json``
is self-contained (every definition and binding schema embedded under its
``$id``), so validation runs offline with ``jsonschema``.

``python -m devtools.asyncapi_specs`` fetches it (``make test`` does, once).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from relayflow.config.settings import load_settings
from relayflow.devstack import build_once

__all__ = ["SPECS_PACKAGE", "SPECS_VERSION", "asyncapi_errors", "fetch_asyncapi_specs",
           "official_schema"]

SPECS_PACKAGE = "@asyncapi/specs"
SPECS_VERSION = "6.11.1"
_INTEGRITY = ("sha512-A3WBLqAKGoJ2+6FWFtpjBlCQ1oFCcs4GxF7zsIGvNqp/klGUHjlA3aAcZ9XMMpLGE8zPeYDz2x9F"
              "mO6DSuKraQ==")
"""``npm view @asyncapi/specs@6.11.1 dist.integrity``."""


class SpecsError(RuntimeError):
    """The specs package could not be fetched or is not the one pinned."""


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def fetch_asyncapi_specs(cache_dir: Path | None = None) -> Path:
    """``npm pack`` the pinned ``@asyncapi/specs`` into the cache, once.

    Args:
        cache_dir: relayflow's cache (default: ``RELAYFLOW_CACHE_DIR``'s).

    Returns:
        The package tarball.

    Raises:
        StackError: npm is missing or could not fetch it.
        SpecsError: The tarball is not the pinned one.
    """
    home = (cache_dir or load_settings().cache_dir) / f"asyncapi-specs-{SPECS_VERSION}"
    tarball = home / f"asyncapi-specs-{SPECS_VERSION}.tgz"
    if not tarball.exists():
        home.mkdir(parents=True, exist_ok=True)
        build_once("npm", ["pack", f"{SPECS_PACKAGE}@{SPECS_VERSION}", "--pack-destination",
                           str(home)], purpose=f"fetch {SPECS_PACKAGE} {SPECS_VERSION} from npm")
    found = _integrity(tarball)
    if found != _INTEGRITY:
        tarball.unlink()
        raise SpecsError(f"{tarball} has integrity {found}, expected {_INTEGRITY}")
    return tarball


def official_schema(version: str = "3.0.0", cache_dir: Path | None = None) -> dict[str, Any]:
    """The official JSON Schema of an AsyncAPI version (``schemas/<version>.json``)."""
    with tarfile.open(fetch_asyncapi_specs(cache_dir)) as package:
        member = package.extractfile(f"package/schemas/{version}.json")
        if member is None:
            raise SpecsError(f"{SPECS_PACKAGE} {SPECS_VERSION} has no schema for {version}")
        schema: dict[str, Any] = json.load(member)
    return schema


def _causes(error: ValidationError) -> Iterator[ValidationError]:
    if not error.context:
        yield error
    for cause in error.context or ():
        yield from _causes(cause)


def _wants_ref(error: ValidationError) -> bool:
    return error.validator == "required" and "'$ref'" in error.message


def asyncapi_errors(document: Any, schema: dict[str, Any]) -> list[str]:
    """Why ``document`` is not valid under ``schema`` (empty when it is), one line per error.

    AsyncAPI's schema is full of ``oneOf: [Reference, X]``: each line names the
    deepest cause found outside the "or a ``$ref``" branches, not just "is not
    valid under any of the given schemas".
    """
    validator = jsonschema.validators.validator_for(schema)(schema)
    lines = []
    for error in validator.iter_errors(document):
        cause = max(_causes(error), key=lambda e: (not _wants_ref(e), len(e.absolute_path)))
        where = "/".join(str(part) for part in cause.absolute_path) or "(root)"
        lines.append(f"{where}: {cause.message[:300]}")
    return lines


if __name__ == "__main__":
    print(f"{SPECS_PACKAGE} {SPECS_VERSION}: {fetch_asyncapi_specs()}")
    sys.exit(0)
