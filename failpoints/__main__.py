"""``python -m failpoints SCRIPT [ARGS...]``: run an installed console script, its points armed.

The fault rig starts ``relayflow bridge`` and ``relayflow worker`` this way:
``arm`` listens to the product's failpoint events (``RELAYFLOW_FAILPOINTS``),
then the console script named ``SCRIPT`` runs with ``ARGS`` as its arguments.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

from failpoints import arm


def main() -> None:
    """Arm the failpoints, then hand this process to the console script."""
    script, *arguments = sys.argv[1:]
    (found,) = entry_points(group="console_scripts", name=script)
    arm()
    sys.argv = [script, *arguments]
    sys.exit(found.load()())


if __name__ == "__main__":
    main()
