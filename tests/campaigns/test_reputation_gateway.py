"""A spam complaint end to end: an ARF report sent over SMTP to the gateway's bounce address,
stored, routed by the worker's router step, suppresses the address of the campaign mail it
names (the returned original's X-Mailroom-ID)."""

from __future__ import annotations

import smtplib

import pytest

from mailroom.campaigns.models import CampaignEvent, Subscription, Suppression
from mailroom.incoming.gateway import start_gateway
from mailroom.incoming.models import InboundMail
from mailroom.incoming.router import route_pending
from tests.campaigns.test_reputation import YAHOO, report, sent_campaign, traces
from tests.incoming import conftest as incoming

domain, zone = incoming.domain, incoming.zone  # router fixtures

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_arf_report_over_smtp_suppresses_the_complaining_reader(domain, acme, mia):
    campaign = sent_campaign(acme, mia, n=2, guard_after=1000)
    trace = traces(campaign)[0]
    with start_gateway() as gateway:
        client = smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=10)
        try:
            client.ehlo("mta1012.mail.gq1.yahoo.com")
            assert client.sendmail("<>", ["bounce@acme.test"],
                                   report(YAHOO, trace).replace(b"\n", b"\r\n")) == {}
        finally:
            client.quit()
    for _ in range(10):
        if route_pending("test") == 0:
            break
    routed = InboundMail.objects.get()
    assert routed.decision == InboundMail.Decision.BOUNCE, routed.reason
    assert "marked “Spring sale” as spam" in routed.reason
    assert CampaignEvent.objects.filter(recipient=trace, kind="complained").exists()
    assert Subscription.objects.get(pk=trace.subscription_id).status == "complained"
    assert Suppression.objects.get(email=trace.email).reason == "complained"
