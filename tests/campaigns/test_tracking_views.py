"""The open pixel and the click redirect, through the real URLs a campaign mail carries."""

from __future__ import annotations

import io
import threading
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image

from mailroom.campaigns import links, tracking
from mailroom.campaigns.campaign_models import CampaignEvent, CampaignLink
from mailroom.campaigns.tracking import instrument
from tests.campaigns.test_tracking import make_campaign, make_trace
from tests.outgoing.markers import IN_MEMORY_SQLITE

Kind = CampaignEvent.Kind
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Mobile/15E148")
GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
APPLE_PROXY = "Mozilla/5.0"
AN_HOUR_AGO = timedelta(hours=1)


def path(url: str) -> str:
    return urlsplit(url).path


def pixel(trace) -> str:
    return path(links.open_url(links.track_token(trace.campaign.company_id, trace.pk)))


def click_url(trace, link_id: int) -> str:
    base = links.click_base(links.track_token(trace.campaign.company_id, trace.pk))
    return path(f"{base}/{link_id}")


def opens(trace):
    return list(CampaignEvent.objects.filter(recipient=trace, kind=Kind.OPENED)
                .values_list("machine", flat=True))


@pytest.fixture
def campaign(acme):
    return make_campaign(acme)


@pytest.fixture
def trace(campaign):
    return make_trace(campaign, sent_at=timezone.now() - AN_HOUR_AGO)


def test_the_pixel_is_a_transparent_gif_recorded_once(client, trace):
    response = client.get(pixel(trace), headers={"user-agent": IPHONE})
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    assert response["Cache-Control"] == "no-store, private"
    assert len(response.content) == 43
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (1, 1) and image.info.get("transparency") == 0
    trace.refresh_from_db()
    first = trace.opened_at
    assert first is not None and not trace.machine_open
    for _ in range(2):  # a refetch is not a new open
        assert client.get(pixel(trace), headers={"user-agent": IPHONE}).status_code == 200
    trace.refresh_from_db()
    assert trace.opened_at == first and opens(trace) == [False]


@pytest.mark.parametrize("agent", [APPLE_PROXY, "Mozilla/5.0 (compatible; Barracuda)"])
def test_privacy_proxies_and_scanners_are_machine_opens(client, trace, agent):
    client.get(pixel(trace), headers={"user-agent": agent})
    trace.refresh_from_db()
    assert trace.opened_at is not None and trace.machine_open
    assert opens(trace) == [True]
    client.get(pixel(trace), headers={"user-agent": agent})  # machine repeats: nothing new
    assert opens(trace) == [True]
    # the person opens it later: a human open after all
    client.get(pixel(trace), headers={"user-agent": IPHONE})
    trace.refresh_from_db()
    assert trace.opened_at is not None and not trace.machine_open
    assert opens(trace) == [True, False]


def test_gmails_image_proxy_is_a_person(client, trace):
    client.get(pixel(trace), headers={"user-agent": GMAIL})
    trace.refresh_from_db()
    assert trace.opened_at is not None and not trace.machine_open


def test_an_open_seconds_after_sending_is_a_scanner(client, campaign):
    trace = make_trace(campaign, sent_at=timezone.now())
    client.get(pixel(trace), headers={"user-agent": IPHONE})
    trace.refresh_from_db()
    assert trace.machine_open and opens(trace) == [True]


def test_a_forged_token_still_gets_the_image_and_records_nothing(client, trace, globex):
    token = links.track_token(trace.campaign.company_id, trace.pk)
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    response = client.get(path(links.open_url(forged)))
    assert response.status_code == 200 and len(response.content) == 43
    # a valid token of another company naming this trace: not theirs
    other = path(links.open_url(links.track_token(globex.pk, trace.pk)))
    assert client.get(other).status_code == 200
    # an unsubscribe token never opens the tracking URL
    unsubscribe = links.unsubscribe_token(trace.campaign.company_id, trace.pk)
    assert client.get(path(links.open_url(unsubscribe))).status_code == 200
    trace.refresh_from_db()
    assert trace.opened_at is None and not CampaignEvent.objects.exists()


def test_a_click_redirects_to_the_campaigns_link_and_counts(client, campaign, trace):
    instrument(campaign, '<a href="https://acme.example/shop?x=1&amp;y=2">shop</a>',
               opens=True, clicks=True)
    link = campaign.links.get()
    response = client.get(click_url(trace, link.pk), headers={"user-agent": IPHONE})
    assert response.status_code == 302
    assert response["Location"] == "https://acme.example/shop?x=1&y=2"
    trace.refresh_from_db()
    first = trace.clicked_at
    assert first is not None
    assert trace.opened_at == first and not trace.machine_open  # a click is a person's open
    client.get(click_url(trace, link.pk), headers={"user-agent": IPHONE})
    link.refresh_from_db()
    trace.refresh_from_db()
    assert link.clicks == 2 and trace.clicked_at == first
    events = list(CampaignEvent.objects.filter(recipient=trace).values_list("kind", "detail"))
    assert events == [(Kind.OPENED, ""), (Kind.CLICKED, link.url), (Kind.CLICKED, link.url)]
    # a HEAD (link checkers) is redirected without being counted
    assert client.head(click_url(trace, link.pk)).status_code == 302
    link.refresh_from_db()
    assert link.clicks == 2


def test_a_click_after_a_machine_open_makes_it_a_person(client, campaign, trace):
    client.get(pixel(trace), headers={"user-agent": APPLE_PROXY})
    link = CampaignLink.objects.create(campaign=campaign, url="https://acme.example/")
    client.get(click_url(trace, link.pk))
    trace.refresh_from_db()
    assert not trace.machine_open and trace.clicked_at is not None
    assert opens(trace) == [True, False]


def test_a_click_goes_only_to_the_recipients_own_links(client, acme, campaign, trace, globex):
    own = CampaignLink.objects.create(campaign=campaign, url="https://acme.example/")
    other = CampaignLink.objects.create(campaign=make_campaign(acme, name="Other"),
                                        url="https://evil.example/")
    response = client.get(click_url(trace, other.pk))
    assert response.status_code == 404 and "Location" not in response
    assert client.get(click_url(trace, own.pk + other.pk + 100)).status_code == 404
    assert client.get(click_url(trace, 10**25)).status_code == 404  # beyond any id column
    token = links.track_token(acme.pk, trace.pk)
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert client.get(path(f"{links.click_base(forged)}/{own.pk}")).status_code == 404
    foreign = links.click_base(links.track_token(globex.pk, trace.pk))
    assert client.get(path(f"{foreign}/{own.pk}")).status_code == 404
    own.refresh_from_db()
    other.refresh_from_db()
    trace.refresh_from_db()
    assert own.clicks == other.clicks == 0 and trace.clicked_at is None
    assert not CampaignEvent.objects.exists()


def statements(request) -> int:
    """The SQL statements a request runs, the test's savepoints aside (in production the
    service's transaction is BEGIN/COMMIT, which Django does not log)."""
    with CaptureQueriesContext(connection) as context:
        request()
    return sum(1 for query in context.captured_queries
               if not query["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT")))


def test_a_hit_costs_few_queries(client, campaign, trace):
    link = CampaignLink.objects.create(campaign=campaign, url="https://acme.example/")
    first, again = (statements(lambda: client.get(pixel(trace), headers={"user-agent": IPHONE}))
                    for _ in range(2))
    assert (first, again) == (3, 1)  # read, mark, event; already opened: the read only
    assert statements(lambda: client.get(click_url(trace, link.pk))) == 4  # + the counter
    assert statements(lambda: client.get(click_url(trace, link.pk))) == 3  # no first mark


@IN_MEMORY_SQLITE
@pytest.mark.django_db(transaction=True)
def test_two_fetches_at_once_record_one_open_and_two_clicks(acme):
    campaign = make_campaign(acme)
    trace = make_trace(campaign, sent_at=timezone.now() - AN_HOUR_AGO)
    link = CampaignLink.objects.create(campaign=campaign, url="https://acme.example/")
    barrier, errors = threading.Barrier(4), []

    def hit(record):
        try:
            barrier.wait()
            record()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    work = [lambda: tracking.record_open(acme.pk, trace.pk, user_agent=IPHONE)] * 2
    work += [lambda: tracking.record_click(acme.pk, trace.pk, link.pk)] * 2
    threads = [threading.Thread(target=hit, args=(record,)) for record in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    link.refresh_from_db()
    trace.refresh_from_db()
    assert link.clicks == 2 and trace.clicked_at is not None and not trace.machine_open
    assert opens(trace) == [False]  # one open, whichever of the four came first
    assert CampaignEvent.objects.filter(recipient=trace, kind=Kind.CLICKED).count() == 2
