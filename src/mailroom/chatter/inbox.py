"""The inbox registry: what an office user must look at, from every app, in one list.

The chatter owns the inbox page and the header bell; each app that has something for a user
(notifications on followed records here, assigned activities in `activities`, failed mails of
mine in `outgoing`) registers a source in its `AppConfig.ready()`:

    register_inbox_source(InboxSource(key="activities", label="Activities",
                                      count=count_for_user, items=items_for_user))

`count(user)` is the number the bell adds up (unread or due); `items(user, limit)` returns
`InboxItem`s, newest first. Both run as that user and see only what the user may see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class InboxItem:
    """One line of the inbox."""

    source: str  # the InboxSource key
    key: str  # unique within the source (e.g. "notification-12"), for mark read/unread
    title: str  # "Re: Order 42" / "Call Linus" / "Mail to x@y failed"
    summary: str  # plain text, already shortened
    when: datetime
    url: str  # where "open" goes (the record, the activity, the mail in the hub)
    record_label: str = ""  # "Ticket #12 — Printer on fire"
    unread: bool = True
    icon: str = "mail"  # a Material Symbols name
    tone: str = ""  # "", "danger", "warning": a failed mail, an overdue activity
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class InboxSource:
    key: str
    label: str
    count: Callable[..., int]  # (user) -> int
    items: Callable[..., list[InboxItem]]  # (user, limit) -> list[InboxItem]
    # (user, item_key, read: bool) -> None; None when items cannot be marked read
    mark: Callable[..., None] | None = None
    position: int = 50


_SOURCES: dict[str, InboxSource] = {}


def register_inbox_source(source: InboxSource) -> None:
    if _SOURCES.get(source.key, source) != source:
        raise ValueError(f"Inbox source {source.key!r} is registered twice.")
    _SOURCES[source.key] = source


def inbox_sources() -> list[InboxSource]:
    return sorted(_SOURCES.values(), key=lambda s: (s.position, s.label))


def inbox_source(key: str) -> InboxSource | None:
    return _SOURCES.get(key)


def inbox_count(user) -> int:
    """What the bell shows: the sum of every source's count for `user`."""
    return sum(source.count(user) for source in inbox_sources())
