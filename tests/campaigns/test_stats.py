"""A campaign's figures on a hand-built campaign: traces, outbox bounces and events."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from mailroom.campaigns import stats
from mailroom.campaigns.campaign_models import CampaignEvent, CampaignLink, CampaignRecipient
from mailroom.outgoing.models import OutgoingRecipient
from mailroom.outgoing.services import record_bounce
from tests.campaigns.test_tracking import make_campaign, make_trace

Kind = CampaignEvent.Kind
Status = CampaignRecipient.Status
NINE = datetime(2026, 3, 2, 9, 5, tzinfo=ZoneInfo("UTC"))
TEN = NINE + timedelta(hours=1)


def event(trace, kind, at, **fields):
    return CampaignEvent.objects.create(campaign=trace.campaign, recipient=trace, kind=kind,
                                        at=at, **fields)


def bounce(trace, *, hard: bool):
    """A delivery report for the trace's mail, through the outbox's own service."""
    recipient = OutgoingRecipient.objects.create(mail=trace.mail, address=trace.email,
                                                 status=OutgoingRecipient.Status.SENT)
    record_bounce(trace.mail, recipient, hard=hard, reason="550 no such user" if hard
                  else "452 mailbox full", smtp_code=550 if hard else 452)


def build(acme):
    """11 targeted (2 more excluded): 9 sent of which 4 bounced (the trace marked: hard, soft,
    no detail; the trace not marked yet, only its outbox recipient: hard), 1 failed, 1 still
    queued; 4 people opened (one after a machine open), 2 machine-only
    opens, 2 clicked, 1 replied, 1 unsubscribed, 1 complained."""
    campaign = make_campaign(acme, total=11, queued=10, exclusions={"duplicate": 1,
                                                                   "suppressed": 1})
    sent = [make_trace(campaign, sent_at=NINE - timedelta(hours=1)) for _ in range(5)]
    bounced = [make_trace(campaign, sent_at=NINE, status=Status.BOUNCED) for _ in range(3)]
    bounce(bounced[0], hard=True)
    bounce(bounced[1], hard=False)
    bounce(make_trace(campaign, sent_at=NINE), hard=True)
    make_trace(campaign, status=Status.FAILED)
    make_trace(campaign, status=Status.QUEUED)
    make_trace(campaign, status=Status.EXCLUDED, exclusion="duplicate")
    a, b, c, d, e = sent
    for trace, at in ((a, NINE), (b, NINE), (c, TEN), (d, TEN)):  # people
        trace.opened_at = at
        trace.save()
        event(trace, Kind.OPENED, at)
    event(d, Kind.OPENED, NINE, machine=True)  # d: a proxy first, then the person
    for trace in (e, bounced[2]):  # machine only
        trace.opened_at, trace.machine_open = NINE, True
        trace.save()
        event(trace, Kind.OPENED, NINE, machine=True)
    shop = CampaignLink.objects.create(campaign=campaign, url="https://acme.example/shop",
                                       clicks=3)
    news = CampaignLink.objects.create(campaign=campaign, url="https://acme.example/news",
                                       clicks=1)
    CampaignLink.objects.create(campaign=campaign, url="https://acme.example/never")
    for trace, link in ((a, shop), (a, shop), (b, shop), (b, news)):
        trace.clicked_at = trace.clicked_at or TEN
        trace.save()
        event(trace, Kind.CLICKED, TEN, detail=link.url)
    a.replied_at = TEN
    a.save()
    event(a, Kind.REPLIED, TEN)
    c.unsubscribed_at = TEN
    c.save()
    event(c, Kind.UNSUBSCRIBED, TEN)
    event(d, Kind.COMPLAINED, TEN)
    event(d, Kind.COMPLAINED, TEN)  # twice reported, one person
    return campaign


def test_summary_counts_people_from_the_traces(acme, django_assert_max_num_queries):
    campaign = build(acme)
    make_trace(make_campaign(acme, name="Other"), sent_at=NINE)  # another campaign's
    with django_assert_max_num_queries(1):
        figures = stats.summary(campaign)
    rates = figures.pop("rates")
    assert figures == {
        "targeted": 11, "excluded": 2, "queued": 10, "sent": 9, "delivered": 5, "opened": 4,
        "machine_opened": 2, "clicked": 2, "replied": 1, "bounced": 4, "bounced_hard": 2,
        "bounced_soft": 1, "unsubscribed": 1, "complained": 1, "failed": 1}
    assert rates == {"opened": 44.4, "clicked": 22.2, "replied": 11.1, "bounced": 44.4,
                     "unsubscribed": 11.1, "complained": 11.1}


def test_an_empty_campaign_has_zero_rates(acme):
    figures = stats.summary(make_campaign(acme))
    assert figures["sent"] == 0 and set(figures["rates"].values()) == {0.0}
    assert stats.timeline(make_campaign(acme)) == [] and stats.links(make_campaign(acme)) == []


def test_timeline_buckets_events_per_hour(acme, settings):
    settings.TIME_ZONE = "Europe/Paris"
    campaign = build(acme)
    late = CampaignEvent.objects.filter(campaign=campaign, kind=Kind.UNSUBSCRIBED).get()
    late.at = NINE + timedelta(hours=3)  # two quiet hours between
    late.save()
    paris = ZoneInfo("Europe/Paris")
    points = stats.timeline(campaign)
    assert points == [
        {"at": NINE.replace(minute=0), "opened": 2, "machine_opened": 3, "clicked": 0,
         "unsubscribed": 0},
        {"at": TEN.replace(minute=0), "opened": 2, "machine_opened": 0, "clicked": 4,
         "unsubscribed": 0},
        {"at": NINE.replace(minute=0) + timedelta(hours=2), "opened": 0, "machine_opened": 0,
         "clicked": 0, "unsubscribed": 0},
        {"at": NINE.replace(minute=0) + timedelta(hours=3), "opened": 0, "machine_opened": 0,
         "clicked": 0, "unsubscribed": 1},
    ]
    assert points[0]["at"].tzinfo == paris and points[0]["at"].hour == 10  # 09:00 UTC


def test_links_most_clicked_first_with_the_people(acme):
    campaign = build(acme)
    assert stats.links(campaign) == [
        {"url": "https://acme.example/shop", "clicks": 3, "people": 2},
        {"url": "https://acme.example/news", "clicks": 1, "people": 1},
        {"url": "https://acme.example/never", "clicks": 0, "people": 0},
    ]
