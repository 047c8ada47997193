"""Helpdesk's KPIs for digest emails (core.kpis)."""

from __future__ import annotations

import statistics

from django.contrib.contenttypes.models import ContentType
from django.db.models import Min

from mailroom.business.helpdesk.models import Ticket
from mailroom.chatter.models import Message
from mailroom.core.kpis import Kpi, Unit, changelist_link, register

# A response is what the customer can read: an email or a message, never a note or a log line.
RESPONSE_TYPES = (Message.Type.EMAIL, Message.Type.COMMENT)


def tickets_opened(company, start, end) -> int:
    return Ticket.objects.filter(company=company, created_at__gte=start,
                                 created_at__lt=end).count()


def tickets_closed(company, start, end) -> int:
    return Ticket.objects.filter(company=company, closed_at__gte=start,
                                 closed_at__lt=end).count()


def first_response_seconds(company, start, end) -> float | None:
    """Median time from a ticket's creation to the first message an office user wrote on it
    that is not an internal note, over the tickets opened in the window (those answered so
    far). None when none of them was answered."""
    tickets = Ticket.objects.filter(company=company, created_at__gte=start, created_at__lt=end)
    opened = dict(tickets.values_list("pk", "created_at"))
    if not opened:
        return None
    first = (Message.objects.filter(
        company=company, content_type=ContentType.objects.get_for_model(Ticket),
        object_id__in=tickets.values("pk"), author_user__isnull=False,
        message_type__in=RESPONSE_TYPES)
        .values("object_id").annotate(first=Min("date")).values_list("object_id", "first"))
    delays = [max((answered - opened[pk]).total_seconds(), 0.0) for pk, answered in first]
    return float(statistics.median(delays)) if delays else None


def register_kpis() -> None:
    register(Kpi(key="helpdesk.tickets_opened", group="Helpdesk", label="Tickets opened",
                 unit=Unit.COUNT, compute=tickets_opened, permission="helpdesk.view_ticket",
                 position=10, list_url=changelist_link("helpdesk.ticket", "created_at"),
                 description="Tickets created in the period, by mail, API or by hand."))
    register(Kpi(key="helpdesk.tickets_closed", group="Helpdesk", label="Tickets closed",
                 unit=Unit.COUNT, compute=tickets_closed, permission="helpdesk.view_ticket",
                 position=20, list_url=changelist_link("helpdesk.ticket", "closed_at"),
                 description="Tickets solved or cancelled in the period and not reopened."))
    register(Kpi(key="helpdesk.first_response", group="Helpdesk",
                 label="Median first response", unit=Unit.DURATION,
                 compute=first_response_seconds, permission="helpdesk.view_ticket",
                 position=30, higher_is_better=False,
                 list_url=changelist_link("helpdesk.ticket", "created_at"),
                 description="Median time between a ticket's creation and the first email or "
                             "message a team member wrote on it (internal notes do not "
                             "count), over the tickets opened in the period."))
