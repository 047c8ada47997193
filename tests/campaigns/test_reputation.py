"""The reputation guard for real: delivery reports and ARF feedback reports go through the
router (`deliver`: stored, then routed like gateway mail) to the bounce rule, the outbox
records them and runs the campaign's hooks, which mark the trace, the subscriptions and the
suppression list, and pause a campaign whose rates pass its limits."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from mailroom.campaigns import campaign_services, reputation
from mailroom.campaigns.models import (
    Campaign,
    CampaignEvent,
    CampaignRecipient,
    MailingList,
    Subscription,
    Suppression,
)
from mailroom.contacts.models import Partner
from mailroom.core.models import AuditLog
from mailroom.core.tokens import mailroom_id
from mailroom.incoming.models import InboundMail
from mailroom.outgoing.models import OutgoingMail
from mailroom.outgoing.services import enqueue
from tests.incoming import conftest as incoming

deliver, domain, zone = incoming.deliver, incoming.domain, incoming.zone  # router fixtures

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).parents[1] / "lib" / "samples"
State = Campaign.State
# sample, the failed or complaining address in it, its Message-ID, its X-Mailroom-ID
HARD = ("bounces/postfix_user_unknown.eml", "jane.doe@customer.example",
        "<original-1@example.com>", "AbC123xyz")
SOFT = ("bounces/mailbox_full.eml", "kim@smallbiz.example", "<original-6@example.com>",
        "FuLL22abc")
YAHOO = ("arf/yahoo_abuse.eml", "lena.fischer@yahoo.com", "<yahoo-original-1@acme.test>",
         "YaHoo123abc")
AOL = ("arf/aol_redacted.eml", "redacted@aol.com", "<aol-original-1@acme.test>",
       "AoL777redact")
JMRP = ("arf/microsoft_jmrp.eml", "sam.okafor@outlook.com", "<jmrp-original-1@acme.test>",
        "MsJmrp42zz")


def sent_campaign(company, owner, n: int = 20, **fields) -> Campaign:
    """A campaign in SENDING whose `n` traces were sent, each with its outbox mail and a
    subscription to the Newsletter list."""
    fields.setdefault("guard_after", n)
    campaign = Campaign.objects.create(
        company=company, name="Spring news", subject="Spring sale",
        email_from="Acme News <news@acme.test>", state=State.SENDING, created_by=owner,
        total=n, queued=n, audience_done=True, **fields)
    news = MailingList.objects.create(company=company, name="Newsletter")
    for i in range(n):
        address = f"reader{i}@client.example"
        partner = Partner.objects.create(company=company, name=f"Reader {i}", email=address)
        subscription = Subscription.objects.create(company=company, mailing_list=news,
                                                   partner=partner, email=address)
        mail = enqueue(company=company, email_from=campaign.email_from, to=[partner],
                       subject="Spring sale", text="Twenty percent off.", record=campaign)
        CampaignRecipient.objects.create(
            campaign=campaign, partner=partner, subscription=subscription, email=address,
            status=CampaignRecipient.Status.SENT, mail=mail, message_id=mail.message_id)
    return campaign


def report(sample, trace: CampaignRecipient, *, keep_mrid: bool = True) -> bytes:
    """The sample as a report on the trace's mail and address, with a fresh Message-ID."""
    name, address, original_id, original_mrid = sample
    raw = (SAMPLES / name).read_bytes()
    raw = re.sub(rb"(?im)^Message-ID:[^\n]*\n", b"", raw, count=1)
    raw = b"Message-ID: <%s@report.example>\n" % uuid.uuid4().hex.encode() + raw
    raw = re.sub(re.escape(address).encode(), trace.email.encode(), raw, flags=re.IGNORECASE)
    raw = raw.replace(original_id.encode(), f"<{trace.mail.message_id.strip('<>')}>".encode())
    return raw.replace(original_mrid.encode(),
                       mailroom_id(trace.mail_id).encode() if keep_mrid else b"not-ours")


def traces(campaign):
    return list(CampaignRecipient.objects.filter(campaign=campaign).select_related("mail"))


def fresh(campaign) -> Campaign:
    return Campaign.objects.get(pk=campaign.pk)


@pytest.fixture
def mia(mia):
    mia.email = "mia@acme.example"  # the default example.test is refused by the outbox
    mia.save(update_fields=["email"])
    return mia


def guard_mails(owner):
    return OutgoingMail.objects.filter(subject__contains="paused by the reputation guard",
                                       recipients__address=owner.email)


# --- complaints --------------------------------------------------------------------------------

@pytest.mark.parametrize("sample", [YAHOO, AOL, JMRP], ids=["yahoo", "aol-redacted", "jmrp"])
def test_an_arf_report_marks_the_recipient_complained_and_suppressed(deliver, acme, mia,
                                                                     sample):
    campaign = sent_campaign(acme, mia, n=3, guard_after=1000)
    trace = traces(campaign)[1]
    routed = deliver(report(sample, trace), to=["bounce@acme.test"], sender="")
    assert routed.decision == InboundMail.Decision.BOUNCE, routed.reason
    assert routed.is_automatic
    assert f"{trace.email} marked “Spring sale” as spam" in routed.reason
    event = CampaignEvent.objects.get(recipient=trace, kind=CampaignEvent.Kind.COMPLAINED)
    assert event.detail == "Marked as spam (abuse)"
    assert Subscription.objects.get(pk=trace.subscription_id).status == "complained"
    assert Suppression.objects.get(company=acme, email=trace.email).reason == "complained"
    assert AuditLog.objects.filter(action="outgoing.mail.complaint",
                                   object_id=str(trace.mail_id)).exists()
    others = [t for t in traces(campaign) if t.pk != trace.pk]
    assert not Suppression.objects.filter(email__in=[t.email for t in others]).exists()
    assert fresh(campaign).state == State.SENDING  # guard_after not reached


def test_the_message_id_finds_the_mail_when_the_receiver_stripped_our_header(deliver, acme,
                                                                            mia):
    campaign = sent_campaign(acme, mia, n=2, guard_after=1000)
    trace = traces(campaign)[0]
    routed = deliver(report(YAHOO, trace, keep_mrid=False), to=["bounce@acme.test"])
    assert "returned Message-ID" in str(routed.trace)
    assert Suppression.objects.filter(email=trace.email, reason="complained").exists()


def test_an_arf_report_about_unknown_mail_is_logged_with_a_reason(deliver, acme):
    raw = (SAMPLES / "arf" / "rfc5965_minimal.eml").read_bytes()
    routed = deliver(raw, to=["bounce@acme.test"])
    assert routed.decision == InboundMail.Decision.BOUNCE
    assert "cannot find" in routed.reason and "nothing was changed" in routed.reason
    assert not Suppression.objects.exists()


def test_a_repeated_complaint_changes_nothing_more(deliver, acme, mia):
    campaign = sent_campaign(acme, mia, n=2, guard_after=1000)
    trace = traces(campaign)[0]
    deliver(report(YAHOO, trace), to=["bounce@acme.test"])
    deliver(report(JMRP, trace), to=["bounce@acme.test"])
    assert CampaignEvent.objects.filter(kind="complained").count() == 1
    assert Suppression.objects.count() == 1


# --- bounces -----------------------------------------------------------------------------------

def test_a_hard_bounce_marks_the_trace_bounced_and_suppresses(deliver, acme, mia):
    campaign = sent_campaign(acme, mia, n=2, guard_after=1000)
    trace = traces(campaign)[0]
    routed = deliver(report(HARD, trace), to=["bounce@acme.test"])
    assert routed.decision == InboundMail.Decision.BOUNCE, routed.reason
    trace.refresh_from_db()
    assert trace.status == CampaignRecipient.Status.BOUNCED
    event = CampaignEvent.objects.get(recipient=trace, kind="bounced")
    assert event.detail.startswith("Hard bounce: ") and "5.1.1" in event.detail
    assert Subscription.objects.get(pk=trace.subscription_id).status == "bounced"
    row = Suppression.objects.get(email=trace.email)
    assert row.reason == "bounced" and "Spring news" in row.note


def test_a_soft_bounce_marks_the_trace_but_suppresses_nobody(deliver, acme, mia):
    campaign = sent_campaign(acme, mia, n=2, guard_after=1)
    trace = traces(campaign)[0]
    deliver(report(SOFT, trace), to=["bounce@acme.test"])
    trace.refresh_from_db()
    assert trace.status == CampaignRecipient.Status.BOUNCED
    assert CampaignEvent.objects.get(recipient=trace).detail.startswith("Soft bounce: ")
    assert Subscription.objects.get(pk=trace.subscription_id).status == "subscribed"
    assert not Suppression.objects.exists()
    assert fresh(campaign).state == State.SENDING  # a full mailbox is no hard bounce


# --- the guard ---------------------------------------------------------------------------------

def test_hard_bounces_above_the_limit_pause_the_campaign_and_tell_its_owner(deliver, acme,
                                                                           mia):
    campaign = sent_campaign(acme, mia, n=20, bounce_limit=Decimal("5"))
    first, second = traces(campaign)[:2]
    deliver(report(HARD, first), to=["bounce@acme.test"])
    assert fresh(campaign).state == State.SENDING  # 1 of 20 is 5%: at the limit, not above
    assert not guard_mails(mia).exists()
    deliver(report(HARD, second), to=["bounce@acme.test"])
    paused = fresh(campaign)
    assert paused.state == State.PAUSED
    assert paused.state_reason == ("Paused by the reputation guard: 2 of 20 sent mails bounced "
                                   "hard (10%), above the 5% limit.")
    notice = guard_mails(mia).get()
    assert notice.email_from == "Acme Corp <notifications@acme.test>"
    assert paused.state_reason in notice.body_text
    # a link to the campaign's page (the admin's until the campaign page is there)
    assert settings.BASE_URL + reputation._campaign_path(campaign) in notice.body_text
    audit = AuditLog.objects.get(action="campaigns.campaign.guard_paused",
                                 object_id=str(campaign.pk))
    assert audit.actor is None and audit.after == {"state": "paused"}


def test_complaints_above_the_limit_pause_the_campaign(deliver, acme, mia):
    campaign = sent_campaign(acme, mia, n=20, complaint_limit=Decimal("5"))
    first, second = traces(campaign)[:2]
    deliver(report(YAHOO, first), to=["bounce@acme.test"])
    assert fresh(campaign).state == State.SENDING  # 1 of 20: 5%, not above
    deliver(report(JMRP, second), to=["bounce@acme.test"])
    paused = fresh(campaign)
    assert paused.state == State.PAUSED
    assert paused.state_reason == ("Paused by the reputation guard: 2 of 20 sent mails were "
                                   "reported as spam (10%), above the 5% limit.")
    assert guard_mails(mia).count() == 1


def test_the_guard_waits_for_guard_after_sends(deliver, acme, mia):
    campaign = sent_campaign(acme, mia, n=10, guard_after=11)
    for trace in traces(campaign)[:5]:
        deliver(report(HARD, trace), to=["bounce@acme.test"])
    assert fresh(campaign).state == State.SENDING  # 50% bounced, but only 10 sent of 11
    assert reputation.figures(campaign) == {"sent": 10, "bounced_hard": 5, "complained": 0}


def test_a_resumed_campaign_is_not_paused_again_nor_its_owner_told_twice(deliver, acme, mia):
    campaign = sent_campaign(acme, mia, n=10, bounce_limit=Decimal("5"))
    bad = traces(campaign)
    deliver(report(HARD, bad[0]), to=["bounce@acme.test"])
    assert fresh(campaign).state == State.PAUSED
    campaign_services.resume(fresh(campaign), actor=mia)
    deliver(report(HARD, bad[1]), to=["bounce@acme.test"])
    assert fresh(campaign).state in (State.SENDING, State.PREPARING)
    assert guard_mails(mia).count() == 1


def test_a_finished_campaign_is_left_alone(deliver, acme, mia):
    campaign = sent_campaign(acme, mia, n=10, bounce_limit=Decimal("5"))
    Campaign.objects.filter(pk=campaign.pk).update(state=State.DONE)
    deliver(report(HARD, traces(campaign)[0]), to=["bounce@acme.test"])
    assert fresh(campaign).state == State.DONE
    assert Suppression.objects.count() == 1  # the bounce itself is still recorded


def test_the_reason_in_plain_words_for_the_figures_of_the_issue(acme):
    campaign = Campaign(company=acme, name="x", guard_after=200)
    assert reputation.verdict(campaign, {"sent": 220, "bounced_hard": 14, "complained": 0}) == (
        "Paused by the reputation guard: 14 of 220 sent mails bounced hard (6.4%), above the "
        "5% limit.")
    assert reputation.verdict(campaign, {"sent": 300, "bounced_hard": 0, "complained": 1}) == (
        "Paused by the reputation guard: 1 of 300 sent mails were reported as spam (0.33%), "
        "above the 0.3% limit.")
    assert reputation.verdict(campaign, {"sent": 1000, "bounced_hard": 50,
                                         "complained": 3}) == ""  # both at their limits
    assert reputation.verdict(campaign, {"sent": 199, "bounced_hard": 199,
                                         "complained": 0}) == ""


def test_an_owner_the_outbox_refuses_does_not_undo_the_pause(deliver, acme, mia):
    mia.email = "mia@example.test"  # a reserved name: the outbox refuses it
    mia.save(update_fields=["email"])
    campaign = sent_campaign(acme, mia, n=10, bounce_limit=Decimal("5"))
    deliver(report(HARD, traces(campaign)[0]), to=["bounce@acme.test"])
    assert fresh(campaign).state == State.PAUSED
    assert Suppression.objects.count() == 1
    assert not guard_mails(mia).exists()


def test_a_feedback_report_to_an_ordinary_address_about_foreign_mail_is_routed_as_mail(
        deliver, acme):
    raw = (SAMPLES / "arf" / "rfc5965_minimal.eml").read_bytes()
    routed = deliver(raw, to=["sales@acme.test"], sender="abusedesk@example.com")
    assert routed.decision != InboundMail.Decision.BOUNCE, routed.reason
    assert "did not send" in str(routed.trace)
