"""ISO 4217 currency codes: which three letters name a currency.

The codes come from the ``iso4217`` package (public domain, 12 KB), which
ships ISO 4217 List One as its maintenance agency, SIX, publishes it (the XML
file itself); its version carries the list's date (1.16.20260101: the list of
2026-01-01, ``iso4217.__published__``). Python's standard library has no such
list, and a copy kept here would go stale unnoticed: a new list is an upgrade
of that package. ``XXX`` (no currency involved) and ``XTS`` (reserved for
testing) are on the list but are no currency an order can be paid in.
"""

from __future__ import annotations

import iso4217

__all__ = ["CURRENCIES", "LIST_PUBLISHED", "is_currency"]

CURRENCIES: frozenset[str] = frozenset(code for code in iso4217.raw_table if code) - {"XXX", "XTS"}
"""The alphabetic codes of ISO 4217 List One that an order may be in."""
LIST_PUBLISHED = iso4217.__published__
"""When the list in use was published."""


def is_currency(code: str) -> bool:
    """Whether ``code`` is an ISO 4217 currency code (upper case, e.g. ``EUR``)."""
    return code in CURRENCIES
