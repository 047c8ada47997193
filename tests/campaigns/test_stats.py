"""A campaign's figures on a hand-built campaign: traces, outbox bounces and events."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from mailroom.campaigns import stats
from mailroom.campaigns.campaign_models import CampaignEvent, CampaignLink, CampaignRecipient
from mailroom.outgoing.models import FailureType, OutgoingRecipient
from tests.campaigns.test_tracking import make_campaign, make_trace

Kind = CampaignEvent.Kind
Status = CampaignRecipient.Status
NINE = datetime(2026, 3, 2, 9, 5, tzinfo=ZoneInfo("UTC"))
TEN = NINE + timedelta(hours=1)


def event(trace, kind, at, **fields):
    return CampaignEvent.objects.create(campaign=trace.campaign, recipient=trace, kind=kind,
                                        at=at, **fields)


def bounce(trace, failure_type):
    OutgoingRecipient.objects.create(mail=trace.mail, address=trace.email,
                                     status=OutgoingRecipient.Status.BOUNCED,
                                     failure_type=failure_type)


def build(acme):
    """10 targeted (2 more excluded): 8 sent of which 3 bounced (hard, soft, unknown), 1
    failed, 1 still queued; 4 people opened (one after a machine open), 2 machine-only
    opens, 2 clicked, 1 replied, 1 unsubscribed, 1 complained."""
    campaign = make_campaign(acme, total=10, queued=9, exclusions={"duplicate": 1,
                                                                   "suppressed": 1})
    sent = [make_trace(campaign, sent_at=NINE - timedelta(hours=1)) for _ in range(5)]
    bounced = [make_trace(campaign, sent_at=NINE, status=Status.BOUNCED) for _ in range(3)]
    bounce(bounced[0], FailureType.HARD_BOUNCE)
    bounce(bounced[1], FailureType.SOFT_BOUNCE)
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
        "targeted": 10, "excluded": 2, "queued": 9, "sent": 8, "delivered": 5, "opened": 4,
        "machine_opened": 2, "clicked": 2, "replied": 1, "bounced": 3, "bounced_hard": 1,
        "bounced_soft": 1, "unsubscribed": 1, "complained": 1, "failed": 1}
    assert rates == {"opened": 50.0, "clicked": 25.0, "replied": 12.5, "bounced": 37.5,
                     "unsubscribed": 12.5, "complained": 12.5}


def test_an_empty_campaign_has_zero_rates(acme):
    figures = stats.summary(make_campaign(acme))
    assert figures["sent"] == 0 and set(figures["rates"].values()) == {0.0}
    assert stats.timeline(make_campaign(acme)) == [] and stats.links(make_campaign(acme)) == []


def test_timeline_buckets_events_per_hour(acme, settings):
    settings.TIME_ZONE = "UTC"
    campaign = build(acme)
    assert stats.timeline(campaign) == [
        {"at": NINE.replace(minute=0), "opened": 2, "machine_opened": 3, "clicked": 0,
         "unsubscribed": 0},
        {"at": TEN.replace(minute=0), "opened": 2, "machine_opened": 0, "clicked": 4,
         "unsubscribed": 1},
    ]


def test_links_most_clicked_first_with_the_people(acme):
    campaign = build(acme)
    assert stats.links(campaign) == [
        {"url": "https://acme.example/shop", "clicks": 3, "people": 2},
        {"url": "https://acme.example/news", "clicks": 1, "people": 1},
        {"url": "https://acme.example/never", "clicks": 0, "people": 0},
    ]
