"""Replies to a campaign: routed by the reply token onto the campaign's chatter (its
Replies), matched to the recipient they answer and counted once."""

from __future__ import annotations

import pytest

from mailroom.campaigns import stats
from mailroom.campaigns.models import CampaignEvent
from mailroom.chatter.models import Message
from mailroom.incoming.models import InboundMail
from mailroom.incoming.router import route_pending
from mailroom.incoming.services import accept
from tests.campaigns.test_reputation import sent_campaign, traces
from tests.incoming import conftest as incoming

domain, zone = incoming.domain, incoming.zone  # router fixtures

pytestmark = pytest.mark.django_db


def reply(acme, trace, *, in_reply_to: str, number: int = 1) -> InboundMail:
    raw = (f"From: Reader <{trace.email}>\r\nTo: {trace.mail.reply_to}\r\n"
           f"Subject: Re: Spring sale\r\nMessage-ID: <reply{number}@client.example>\r\n"
           f"In-Reply-To: {in_reply_to}\r\n\r\nThank you, I will come by.\r\n")
    accept(raw.encode(), company=acme, source="api", envelope_to=[trace.mail.reply_to])
    route_pending("test")
    return InboundMail.objects.order_by("-pk").first()


def test_a_reply_lands_on_the_campaign_and_counts_once(domain, acme, mia):
    campaign = sent_campaign(acme, mia, n=3, guard_after=1000)
    first, second = traces(campaign)[:2]
    routed = reply(acme, first, in_reply_to=first.mail.message_id)
    assert routed.decision == InboundMail.Decision.POSTED, routed.reason
    message = Message.objects.get(direction=Message.Direction.INCOMING)
    assert message.object_id == campaign.pk  # on the campaign's chatter: its Replies
    first.refresh_from_db()
    assert first.replied_at is not None
    reply(acme, first, in_reply_to=first.mail.message_id, number=2)  # a second reply
    assert CampaignEvent.objects.filter(kind="replied").count() == 1
    # no In-Reply-To that we know: the sender's address finds the recipient
    reply(acme, second, in_reply_to="<unknown@elsewhere.example>", number=3)
    second.refresh_from_db()
    assert second.replied_at is not None
    assert stats.summary(campaign)["replied"] == 2


def test_the_campaign_page_loads_its_replies(domain, acme, mia, client_for):
    campaign = sent_campaign(acme, mia, n=1, guard_after=1000)
    trace = traces(campaign)[0]
    reply(acme, trace, in_reply_to=trace.mail.message_id)
    client = client_for(mia)
    page = client.get(f"/campaigns/c/{campaign.pk}/").content.decode()
    assert 'id="campaign-replies"' in page
    panel_url = page.split('id="chatter"', 1)[1].split('hx-get="', 1)[1].split('"', 1)[0]
    panel = client.get(panel_url)
    assert panel.status_code == 200 and "Re: Spring sale" in panel.content.decode()
