"""A campaign's figures, in a few aggregate queries (never a loop over recipients).

`summary(campaign) -> dict` with integer counts `targeted, excluded, queued, sent, delivered,
opened, machine_opened, clicked, replied, bounced, bounced_hard, bounced_soft, unsubscribed,
complained, failed` and `rates`: {name: percent float of sent (opened, clicked, replied,
bounced, unsubscribed, complained)}.
`timeline(campaign) -> list[dict]`: [{"at": datetime (hour), "opened": n, "clicked": n, …}].
`links(campaign) -> list[dict]`: [{"url": str, "clicks": n, "people": n}], most clicked first.

Where the figures come from (one row per address: the trace, CampaignRecipient):
- targeted, excluded, queued: the campaign's own counters (the audience after exclusions,
  the addresses left out, the mails queued so far);
- sent: traces whose mail left (status sent or bounced); bounced: of those, the ones marked
  bounced or whose outbox recipient a bounce report marked (OutgoingRecipient.status);
  delivered: sent minus bounced; failed: status failed (never left);
- bounced_hard / bounced_soft: bounced traces whose outbox recipient says hard or soft bounce
  (failure_type); a bounce without that detail counts in `bounced` only;
- opened: people who opened (a person's open, or a click); machine_opened: traces opened only
  by a privacy proxy or scanner so far (tracking.py) — the two never overlap;
- clicked, replied, unsubscribed: the trace's first click, reply and unsubscribe;
- complained: traces with a `complained` event.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Left, TruncHour
from django.utils import timezone

from mailroom.campaigns.campaign_models import CampaignEvent, CampaignLink, CampaignRecipient
from mailroom.outgoing.models import FailureType, OutgoingRecipient

KEYS = ("targeted", "excluded", "queued", "sent", "delivered", "opened", "machine_opened",
        "clicked", "replied", "bounced", "bounced_hard", "bounced_soft", "unsubscribed",
        "complained", "failed")
RATES = ("opened", "clicked", "replied", "bounced", "unsubscribed", "complained")
TIMELINE = ("opened", "machine_opened", "clicked", "unsubscribed")
HOUR = timedelta(hours=1)

Status = CampaignRecipient.Status
Kind = CampaignEvent.Kind


def _outbox(**fields) -> Exists:
    """Whether the trace's outbox recipient (a campaign mail has one) matches `fields`."""
    return Exists(OutgoingRecipient.objects.filter(mail=OuterRef("mail"), **fields))


def summary(campaign) -> dict:
    sent = Q(status__in=[Status.SENT, Status.BOUNCED])
    # a bounce report marks the outbox recipient (outgoing.services.record_bounce), with
    # whether it was hard or soft; a trace marked bounced counts even without that detail
    bounced = sent & (Q(status=Status.BOUNCED) | Q(outbox_bounced=True))
    traces = (CampaignRecipient.objects.filter(campaign=campaign)
              .annotate(outbox_bounced=_outbox(status=OutgoingRecipient.Status.BOUNCED),
                        hard=_outbox(failure_type=FailureType.HARD_BOUNCE),
                        soft=_outbox(failure_type=FailureType.SOFT_BOUNCE),
                        complaint=Exists(CampaignEvent.objects.filter(
                            recipient=OuterRef("pk"), kind=Kind.COMPLAINED))))
    figures = traces.aggregate(
        sent=Count("pk", filter=sent),
        bounced=Count("pk", filter=bounced),
        bounced_hard=Count("pk", filter=bounced & Q(hard=True)),
        bounced_soft=Count("pk", filter=bounced & Q(soft=True, hard=False)),
        failed=Count("pk", filter=Q(status=Status.FAILED)),
        opened=Count("pk", filter=Q(opened_at__isnull=False, machine_open=False)),
        machine_opened=Count("pk", filter=Q(opened_at__isnull=False, machine_open=True)),
        clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
        replied=Count("pk", filter=Q(replied_at__isnull=False)),
        unsubscribed=Count("pk", filter=Q(unsubscribed_at__isnull=False)),
        complained=Count("pk", filter=Q(complaint=True)),
    )
    figures.update(targeted=campaign.total, excluded=campaign.excluded, queued=campaign.queued,
                   delivered=figures["sent"] - figures["bounced"])
    figures = {key: figures[key] for key in KEYS}
    figures["rates"] = {name: round(100 * figures[name] / figures["sent"], 1)
                        if figures["sent"] else 0.0 for name in RATES}
    return figures


def timeline(campaign) -> list[dict]:
    """Per hour (the current time zone, from the first event's hour to the last's, quiet
    hours as zeros): people's opens,
    machine opens, clicks (every one) and unsubscribes, from the events."""
    opened = Q(kind=Kind.OPENED)
    rows = (CampaignEvent.objects
            .filter(campaign=campaign, kind__in=[Kind.OPENED, Kind.CLICKED,
                                                 Kind.UNSUBSCRIBED])
            .annotate(hour=TruncHour("at")).values("hour")
            .annotate(opened=Count("pk", filter=opened & Q(machine=False)),
                      machine_opened=Count("pk", filter=opened & Q(machine=True)),
                      clicked=Count("pk", filter=Q(kind=Kind.CLICKED)),
                      unsubscribed=Count("pk", filter=Q(kind=Kind.UNSUBSCRIBED)))
            .order_by("hour"))
    # keyed by the UTC instant (aware datetimes in one zone compare by wall clock)
    counted = {row["hour"].astimezone(UTC): row for row in rows}
    if not counted:
        return []
    # every hour from the first to the last, quiet ones as zeros: a chart's x axis is time
    zone, hours, last = timezone.get_current_timezone(), [min(counted)], max(counted)
    while hours[-1] < last:
        hours.append(hours[-1] + HOUR)
    empty = dict.fromkeys(TIMELINE, 0)
    return [{"at": hour.astimezone(zone),
             **{key: counted.get(hour, empty)[key] for key in TIMELINE}} for hour in hours]


def links(campaign) -> list[dict]:
    """Each tracked link with its clicks (repeats included) and the people who clicked it
    (click events name the link's URL, cut to the event's detail length)."""
    detail = CampaignEvent._meta.get_field("detail").max_length
    people = (CampaignEvent.objects
              .filter(campaign=OuterRef("campaign"), kind=Kind.CLICKED,
                      detail=Left(OuterRef("url"), detail))
              .order_by().values("campaign")
              .annotate(n=Count("recipient", distinct=True)).values("n"))
    rows = (CampaignLink.objects.filter(campaign=campaign)
            .annotate(people=Coalesce(Subquery(people, output_field=IntegerField()), 0))
            .order_by("-clicks", "id").values("url", "clicks", "people"))
    return list(rows)
