"""Numbers read from query strings and form bodies, refused rather than trusted.

`str.isdigit()` accepts "²" and "١٢" (which `int()` refuses or reads), `int()` accepts
" 7 ", "+7", "1_000" and 5000-digit strings (then raises), and a database integer holds
at most 2**63 - 1 (SQLite raises OverflowError past it). These helpers answer None for
anything that is not a plain ASCII number in range, so views turn it into a 4xx.
"""

from __future__ import annotations

import re

MAX_ID = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)


def parse_int(raw: object, *, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """`raw` as an int within [minimum, maximum] if it is ASCII digits only, else None."""
    if not isinstance(raw, str) or not _DIGITS.fullmatch(raw):
        return None
    value = int(raw)
    return value if minimum <= value <= maximum else None


def parse_id(raw: object) -> int | None:
    """A row id (1 … 2**63 - 1) or None."""
    return parse_int(raw, minimum=1)


def parse_ids(raw: object, *, limit: int | None = None) -> list[int] | None:
    """"1,2,3" as ids, or None when any part is not an id or there are more than `limit`."""
    if not isinstance(raw, str):
        return None
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if limit is not None and len(parts) > limit:
        return None
    ids = [parse_id(part) for part in parts]
    if any(value is None for value in ids):
        return None
    return [value for value in ids if value is not None]
