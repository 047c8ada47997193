"""Inbound mail's KPIs for digest emails (core.kpis): what arrived, what the router could not
place."""

from __future__ import annotations

from mailroom.core.kpis import Kpi, Unit, changelist_link, register
from mailroom.incoming.models import InboundMail

PERMISSION = "incoming.view_inboundmail"


def received(company, start, end) -> int:
    return InboundMail.objects.filter(company=company, received_at__gte=start,
                                      received_at__lt=end).count()


def quarantined(company, start, end) -> int:
    return InboundMail.objects.filter(company=company, state=InboundMail.State.QUARANTINED,
                                      received_at__gte=start, received_at__lt=end).count()


def register_kpis() -> None:
    register(Kpi(key="incoming.received", group="Email", label="Emails received",
                 unit=Unit.COUNT, compute=received, permission=PERMISSION, position=40,
                 list_url=changelist_link("incoming.inboundmail", "received_at"),
                 description="Messages stored by the gateway or the fetchers in the period, "
                             "delivery reports and duplicates included."))
    register(Kpi(key="incoming.quarantined", group="Email", label="Routing quarantined",
                 unit=Unit.COUNT, compute=quarantined, permission=PERMISSION, position=50,
                 higher_is_better=False,
                 list_url=changelist_link("incoming.inboundmail", "received_at",
                                          state=InboundMail.State.QUARANTINED),
                 description="Messages received in the period that the router could not "
                             "place and that still wait in quarantine."))
