"""When a deferred mail is tried again, and when Mailroom gives up on it.

First retry after at least a minute, then doubling, capped at an hour, each delay stretched by
up to 20% so mails deferred together do not all come back in the same second. After the
retry lifetime (settings.MAILROOM_RETRY_LIFETIME, default 4 days, like most MTAs) the mail
fails for good and its author is told once.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(hours=1)
JITTER = 0.2
DEFAULT_LIFETIME = timedelta(days=4)


def retry_delay(attempts: int, *, rand: Callable[[], float] = random.random) -> timedelta:
    """The wait after the `attempts`-th failed attempt (1 for the first failure)."""
    steps = min(max(attempts, 1) - 1, 12)
    base = min(FIRST_RETRY * (2 ** steps), MAX_RETRY)
    return base * (1 + JITTER * rand())


def retry_lifetime() -> timedelta:
    from django.conf import settings

    value = getattr(settings, "MAILROOM_RETRY_LIFETIME", DEFAULT_LIFETIME)
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


def given_up(first_due: datetime, now: datetime) -> bool:
    """Has a mail that was first due at `first_due` been retried long enough?"""
    return now - first_due >= retry_lifetime()
