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
- sent: traces whose mail left (status sent or bounced); bounced: status bounced; delivered:
  sent minus bounced; failed: status failed (never left);
- bounced_hard / bounced_soft: bounced traces whose outbox recipient (or, failing that, the
  mail) says hard or soft bounce (failure_type); a bounce without that detail counts in
  `bounced` only;
- opened: people who opened (a person's open, or a click); machine_opened: traces opened only
  by a privacy proxy or scanner so far (tracking.py) — the two never overlap;
- clicked, replied, unsubscribed: the trace's first click, reply and unsubscribe;
- complained: traces with a `complained` event.
"""

from __future__ import annotations

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Left, TruncHour

from mailroom.campaigns.campaign_models import CampaignEvent, CampaignLink, CampaignRecipient
from mailroom.outgoing.models import FailureType, OutgoingRecipient

KEYS = ("targeted", "excluded", "queued", "sent", "delivered", "opened", "machine_opened",
        "clicked", "replied", "bounced", "bounced_hard", "bounced_soft", "unsubscribed",
        "complained", "failed")
RATES = ("opened", "clicked", "replied", "bounced", "unsubscribed", "complained")
TIMELINE = ("opened", "machine_opened", "clicked", "unsubscribed")

Status = CampaignRecipient.Status
Kind = CampaignEvent.Kind


def _bounce(failure_type: str) -> Exists:
    return Exists(OutgoingRecipient.objects.filter(mail=OuterRef("mail"),
                                                   failure_type=failure_type))


def summary(campaign) -> dict:
    bounced = Q(status=Status.BOUNCED)
    # the outbox says which kind of bounce: on the address (or, failing that, the mail)
    hard = Q(hard=True) | Q(mail__failure_type=FailureType.HARD_BOUNCE)
    soft = Q(soft=True) | Q(mail__failure_type=FailureType.SOFT_BOUNCE)
    traces = (CampaignRecipient.objects.filter(campaign=campaign)
              .annotate(hard=_bounce(FailureType.HARD_BOUNCE),
                        soft=_bounce(FailureType.SOFT_BOUNCE),
                        complaint=Exists(CampaignEvent.objects.filter(
                            recipient=OuterRef("pk"), kind=Kind.COMPLAINED))))
    figures = traces.aggregate(
        sent=Count("pk", filter=Q(status__in=[Status.SENT, Status.BOUNCED])),
        bounced=Count("pk", filter=bounced),
        bounced_hard=Count("pk", filter=bounced & hard),
        bounced_soft=Count("pk", filter=bounced & soft & ~hard),
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
    sent = figures["sent"]
    figures = {key: figures[key] for key in KEYS}
    figures["rates"] = {name: round(100 * figures[name] / sent, 1) if sent else 0.0
                        for name in RATES}
    return figures


def timeline(campaign) -> list[dict]:
    """Per hour (the company's time zone, hours with nothing left out): people's opens,
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
    return [{"at": row["hour"], **{key: row[key] for key in TIMELINE}} for row in rows]


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
