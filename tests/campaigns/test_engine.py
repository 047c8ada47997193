"""Builders for the campaign engine tests: contacts on lists and a campaign handed to the
worker (PREPARING), written directly so the engine is tested on exactly this data."""

from __future__ import annotations

from mailroom.campaigns.models import (
    Campaign,
    CampaignRecipient,
    CampaignTranslation,
    MailingList,
    Subscription,
)
from mailroom.contacts.models import Partner
from tests.outgoing import smtp_peer

sink = smtp_peer.sink  # a fixture: an aiosmtpd sink on loopback

BODY = ('<p>Hello {{ contact.name }},</p><p>Our <a href="https://acme.example/sale">spring '
        'sale</a> starts today.</p><p>{{ company.name }}</p>')


def make_list(company, name: str) -> MailingList:
    return MailingList.objects.create(company=company, name=name)


def person(company, email: str, name: str = "", language: str = "en_US",
           blacklisted: bool = False) -> Partner:
    return Partner.objects.create(company=company, email=email,
                                  name=name or email.split("@")[0].title(),
                                  language=language, is_blacklisted=blacklisted)


def subscribe(mailing_list: MailingList, partner: Partner, status: str = "subscribed",
              email: str | None = None) -> Subscription:
    return Subscription.objects.create(company=mailing_list.company, mailing_list=mailing_list,
                                       partner=partner, email=email or partner.email.lower(),
                                       status=status)


def campaign(company, lists=(), exclude=(), translations=(), **fields) -> Campaign:
    fields.setdefault("name", "Spring news")
    fields.setdefault("subject", "News for {{ contact.first_name }}")
    fields.setdefault("preview_text", "Twenty percent off everything")
    fields.setdefault("email_from", "Acme News <news@acme.example>")
    fields.setdefault("body_html", BODY)
    fields.setdefault("layout", "plain")
    fields.setdefault("lang", "en_US")
    fields.setdefault("state", Campaign.State.PREPARING)
    created = Campaign.objects.create(company=company, **fields)
    created.lists.set(lists)
    created.exclude_lists.set(exclude)
    for lang, subject, body in translations:
        CampaignTranslation.objects.create(campaign=created, lang=lang, subject=subject,
                                           body_html=body)
    return created


def traces(campaign_: Campaign) -> dict[str, CampaignRecipient]:
    return {t.email: t for t in CampaignRecipient.objects.filter(campaign=campaign_)}


def fresh(campaign_: Campaign) -> Campaign:
    return Campaign.objects.get(pk=campaign_.pk)


# --- the queue and the worker step --------------------------------------------------------

import pytest  # noqa: E402

from mailroom.campaigns.engine import queue, step  # noqa: E402
from mailroom.campaigns.models import CampaignEvent  # noqa: E402
from mailroom.outgoing.models import OutgoingMail, OutgoingRecipient  # noqa: E402


@pytest.fixture
def audience_of_five(acme):
    news = make_list(acme, "News")
    for n in range(5):
        subscribe(news, person(acme, f"p{n}@client.example", f"Person {n}"))
    subscribe(news, person(acme, "gone@client.example"), status="unsubscribed")
    return news


def run(campaign_, owner="w1", **kwargs) -> bool:
    assert step.claim(owner) == campaign_.pk
    return step.process(campaign_.pk, owner, **kwargs)


def test_the_step_queues_every_recipient_once_on_the_bulk_lane(acme, audience_of_five):
    sent = campaign(acme, lists=[audience_of_five])

    assert step.campaigns_step("w1") is True

    sent = fresh(sent)
    assert sent.state == "sending" and sent.queued == sent.total == 5 and not sent.lease_owner
    rows = traces(sent)
    queued = [t for t in rows.values() if t.status == "queued"]
    assert len(queued) == 5 and rows["gone@client.example"].status == "excluded"
    mails = OutgoingMail.objects.filter(pk__in=[t.mail_id for t in queued])
    assert mails.count() == 5
    assert {m.purpose for m in mails} == {"bulk"} and {m.on_sent for m in mails} == {
        "campaigns.sent"}
    assert {t.message_id for t in queued} == {m.message_id for m in mails}
    assert all(m.record == sent for m in mails)  # the outbox shows the campaign
    to = dict(OutgoingRecipient.objects.filter(mail__in=mails).values_list("address", "mail_id"))
    assert to == {t.email: t.mail_id for t in queued}
    ada = rows["p0@client.example"]
    mail = OutgoingMail.objects.get(pk=ada.mail_id)
    assert mail.subject == "News for Person" and "Hello Person 0," in mail.body_html
    assert mail.headers["Precedence"] == "bulk"
    assert step.campaigns_step("w1") is False  # nothing left to claim


def test_a_crash_between_batches_loses_nothing_and_queues_nothing_twice(
        acme, audience_of_five, monkeypatch):
    monkeypatch.setattr(queue, "BATCH", 2)
    sent = campaign(acme, lists=[audience_of_five])

    assert run(sent, max_batches=1) is False  # a slice: two queued, the lease let go
    sent = fresh(sent)
    assert (sent.state, sent.queued, sent.total, sent.lease_owner) == ("preparing", 2, 5, "")
    first = set(OutgoingMail.objects.values_list("pk", flat=True))
    # another worker takes over (the first died or let go): it carries on where it stopped
    assert run(sent, owner="w2") is True
    sent = fresh(sent)
    assert (sent.state, sent.queued) == ("sending", 5)
    assert OutgoingMail.objects.count() == 5 and first < set(
        OutgoingMail.objects.values_list("pk", flat=True))
    assert len({t.mail_id for t in traces(sent).values() if t.mail_id}) == 5


def test_a_batch_whose_lease_was_lost_writes_nothing(acme, audience_of_five):
    sent = campaign(acme, lists=[audience_of_five])
    assert step.claim("w1") == sent.pk
    type(sent).objects.filter(pk=sent.pk).update(lease_owner="w2")  # w1 was too slow

    assert step.process(sent.pk, "w1") is False

    assert not OutgoingMail.objects.exists() and fresh(sent).queued == 0


def test_a_paused_campaign_is_not_advanced(acme, audience_of_five, monkeypatch):
    monkeypatch.setattr(queue, "BATCH", 2)
    sent = campaign(acme, lists=[audience_of_five])
    assert run(sent, max_batches=1) is False
    type(sent).objects.filter(pk=sent.pk).update(state="paused")

    assert step.campaigns_step("w1") is False  # not claimed
    assert fresh(sent).queued == 2 and OutgoingMail.objects.count() == 2

    # paused while a worker holds it: the next batch notices and lets go
    type(sent).objects.filter(pk=sent.pk).update(state="preparing")
    assert step.claim("w1") == sent.pk
    type(sent).objects.filter(pk=sent.pk).update(state="paused")
    assert step.process(sent.pk, "w1") is False
    sent = fresh(sent)
    assert (sent.state, sent.queued, sent.lease_owner) == ("paused", 2, "")
    assert OutgoingMail.objects.count() == 2


def test_a_scheduled_campaign_waits_for_its_time(acme, audience_of_five):
    from datetime import timedelta

    from django.utils import timezone

    later = campaign(acme, lists=[audience_of_five], state="scheduled",
                     scheduled_at=timezone.now() + timedelta(hours=1))
    assert step.claim("w1") is None
    type(later).objects.filter(pk=later.pk).update(
        scheduled_at=timezone.now() - timedelta(seconds=1))
    assert step.claim("w1") == later.pk and fresh(later).state == "preparing"


def test_a_bad_placeholder_fails_the_campaign_with_the_reason(acme, audience_of_five):
    sent = campaign(acme, lists=[audience_of_five],
                    body_html="<p>Hello {{ contact.nmae }}</p>")

    assert run(sent) is True

    sent = fresh(sent)
    assert sent.state == "failed" and not sent.lease_owner
    assert "contact.nmae" in sent.state_reason and "Nothing was queued" in sent.state_reason
    assert not OutgoingMail.objects.exists()


def test_a_render_error_after_some_batches_says_how_many_are_on_their_way(
        acme, audience_of_five, monkeypatch):
    from mailroom.campaigns.engine.render import CampaignRenderer
    from mailroom.lib.sandbox import TemplateError

    monkeypatch.setattr(queue, "BATCH", 2)
    render = CampaignRenderer.render

    def third_fails(self, recipient, **kwargs):  # e.g. a value only the third one lacks
        if recipient.email == "p2@client.example":
            raise TemplateError("'contact.city' is undefined", field="body", line=3)
        return render(self, recipient, **kwargs)

    monkeypatch.setattr(CampaignRenderer, "render", third_fails)
    sent = campaign(acme, lists=[audience_of_five])
    assert run(sent) is True

    sent = fresh(sent)
    assert sent.state == "failed" and sent.queued == 2
    assert "2 of 5 mails were queued" in sent.state_reason
    assert "p2@client.example" in sent.state_reason and "contact.city" in sent.state_reason
    assert OutgoingMail.objects.count() == 2


def test_done_once_the_outbox_has_sent_every_mail(acme, audience_of_five, sink):
    from mailroom.outgoing.models import MailServer
    from mailroom.outgoing.sending.engine import Sender

    MailServer.objects.create(company=acme, name="sink", host="127.0.0.1", port=sink.port,
                              security="none", auth="none")
    sent = campaign(acme, lists=[audience_of_five])
    assert step.campaigns_step("w1") is True
    assert step.finish_sent() == 0  # queued, not sent yet

    sender = Sender("w1", timeout=2, step_seconds=0)
    try:
        for _ in range(20):
            if not sender.run_once():
                break
    finally:
        sender.close()

    assert len(sink.messages) == 5
    assert {r.header("Precedence") for r in sink.messages} == {"bulk"}
    assert all(r.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
               for r in sink.messages)
    rows = traces(sent)
    assert {t.status for t in rows.values() if t.mail_id} == {"sent"}
    assert CampaignEvent.objects.filter(campaign=sent, kind="sent").count() == 5
    assert step.finish_sent() == 1
    sent = fresh(sent)
    assert sent.state == "done" and sent.finished_at is not None


def test_done_counts_failed_and_cancelled_mails_as_final(acme, audience_of_five):
    sent = campaign(acme, lists=[audience_of_five])
    assert step.campaigns_step("w1") is True
    rows = sorted(traces(sent).values(), key=lambda t: t.email)
    queued = [t for t in rows if t.mail_id]
    OutgoingMail.objects.filter(pk=queued[0].mail_id).update(state="exception")
    OutgoingMail.objects.filter(pk__in=[t.mail_id for t in queued[1:4]]).update(
        state="cancelled")
    assert step.finish_sent() == 0  # one mail still waits
    OutgoingMail.objects.filter(pk=queued[4].mail_id).update(state="sent")

    assert step.finish_sent() == 1

    statuses = sorted(t.status for t in traces(sent).values() if t.mail_id)
    assert statuses == ["cancelled", "cancelled", "cancelled", "failed", "sent"]
    assert fresh(sent).state == "done"


def test_a_contact_blacklisted_after_the_audience_is_excluded_not_queued(
        acme, audience_of_five):
    from mailroom.campaigns.engine import audience

    sent = campaign(acme, lists=[audience_of_five])
    audience.resolve(sent)
    Partner.objects.filter(email="p3@client.example").update(is_blacklisted=True)

    assert step.campaigns_step("w1") is True

    sent = fresh(sent)
    assert (sent.state, sent.total, sent.queued) == ("sending", 4, 4)
    assert sent.exclusions["blacklisted"] == 1
    late = traces(sent)["p3@client.example"]
    assert (late.status, late.exclusion, late.mail_id) == ("excluded", "blacklisted", None)
    assert not OutgoingRecipient.objects.filter(address="p3@client.example").exists()


def test_a_send_settled_after_its_bounce_leaves_the_recipient_bounced(acme, audience_of_five):
    """A worker died between sending and settling; the mail went out again, and the first
    send's bounce was routed before the second send settled: the trace stays bounced."""
    sent = campaign(acme, lists=[audience_of_five])
    assert step.campaigns_step("w1") is True
    trace = next(t for t in traces(sent).values() if t.status == "queued")
    mail = OutgoingMail.objects.get(pk=trace.mail_id)
    CampaignRecipient.objects.filter(pk=trace.pk).update(status="bounced")

    queue.mark_sent(mail)

    assert CampaignRecipient.objects.get(pk=trace.pk).status == "bounced"
    other = next(t for t in traces(sent).values() if t.status == "queued")
    queue.mark_sent(OutgoingMail.objects.get(pk=other.mail_id))
    assert CampaignRecipient.objects.get(pk=other.pk).status == "sent"
    assert CampaignEvent.objects.filter(recipient=other, kind="sent").count() == 1
