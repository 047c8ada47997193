"""Never answer automatic mail: the switch between the inbound router and automation.

The inbound router sets `AUTOMATIC_MAIL_FLAG` on a record it creates from a message that is
itself automatic (Auto-Submitted, a bounce, an out-of-office reply), or wraps its work in
`suppressed()`; automation asks `is_suppressed()` before any rule fires, so two robots never
mail each other forever. It lives on the ground floor because the router sits below
automation and must not import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_suppressed: ContextVar[bool] = ContextVar("mailroom_automation_suppressed", default=False)
AUTOMATIC_MAIL_FLAG = "triggered_by_automatic_mail"


@contextmanager
def suppressed() -> Iterator[None]:
    """Nothing saved inside this block triggers automated emails."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def is_suppressed(record: Any = None) -> bool:
    return _suppressed.get() or bool(getattr(record, AUTOMATIC_MAIL_FLAG, False))
