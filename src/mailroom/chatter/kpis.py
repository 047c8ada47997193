"""People KPIs for digest emails (core.kpis): who uses Mailroom, and how much they write."""

from __future__ import annotations

from django.db.models import Q

from mailroom.chatter.models import Message
from mailroom.core.kpis import Kpi, Unit, changelist_link, register
from mailroom.core.models import User

# what a person writes: emails, messages and notes (not the system's log lines)
WRITTEN = (Message.Type.EMAIL, Message.Type.COMMENT, Message.Type.NOTE)


def _written(company, start, end):
    return Message.objects.filter(company=company, author_user__isnull=False,
                                  message_type__in=WRITTEN, date__gte=start, date__lt=end)


def active_users(company, start, end) -> int:
    seen = (Q(last_seen_at__gte=start, last_seen_at__lt=end)
            | Q(last_seen_at__isnull=True, last_login__gte=start, last_login__lt=end))
    wrote = Q(pk__in=_written(company, start, end).values("author_user"))
    return (User.objects.filter(companies=company, is_active=True).filter(seen | wrote)
            .distinct().count())


def messages_posted(company, start, end) -> int:
    return _written(company, start, end).count()


def register_kpis() -> None:
    register(Kpi(key="chatter.active_users", group="People", label="Active users",
                 unit=Unit.COUNT, compute=active_users, position=10,
                 list_url=changelist_link("core.user", "last_seen_at"),
                 description="Users of the company who used Mailroom in the period: last "
                             "seen in it, or wrote a message in it (only the latest visit "
                             "is kept, so older periods count fewer)."))
    register(Kpi(key="chatter.messages_posted", group="People", label="Messages posted",
                 unit=Unit.COUNT, compute=messages_posted, permission="chatter.view_message",
                 position=20,
                 description="Emails, messages and notes that users wrote on records in the "
                             "period (system log lines and inbound mail are not counted)."))
