"""Tips sent on their own ("Send as notification now") wait in the reader's Inbox.

Everyone the tip targets gets it there, like a chatter notification; those who want email
also get it by email. The item opens the tip's page (its text and "Was this useful?"), and
leaves the unread count once marked read.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.text import Truncator

from mailroom.chatter.inbox import InboxItem
from mailroom.digests.models import TipView
from mailroom.digests.tip_links import vote_token
from mailroom.digests.tips import render


def _notices(user):
    return (TipView.objects.filter(user=user, notified_at__isnull=False, tip__active=True)
            .select_related("tip"))


def count_for_user(user) -> int:
    return _notices(user).filter(notice_read=False).count()


def items_for_user(user, limit: int = 50) -> list[InboxItem]:
    items = []
    company = user.current_company
    for view in _notices(user).order_by("-notified_at", "-pk")[:limit]:
        title, body = render(view.tip, user, company)
        items.append(InboxItem(
            source="tips", key=f"tip-{view.pk}", title=title,
            summary=Truncator(" ".join(strip_tags(body).split())).chars(160),
            when=timezone.localtime(view.notified_at),
            url=reverse("digests:tip_vote", args=[vote_token(view.tip, user)]),
            record_label="Tip", unread=not view.notice_read, icon="lightbulb"))
    return items


def mark(user, key: str, read: bool) -> None:
    """Mark one tip notification ("tip-12") or all ("all") read or unread — the reader's own
    inbox state, nothing else."""
    rows = _notices(user)
    if key != "all":
        _, _, pk = key.partition("-")
        if not pk.isascii() or not pk.isdigit():
            return
        rows = rows.filter(pk=int(pk))
    TipView.objects.filter(pk__in=rows.values("pk")).update(notice_read=read)
