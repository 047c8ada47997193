"""Campaign services: who may change a campaign, what a campaign must hold before it is
sent, and the states it moves through (send, schedule, pause, resume, cancel, duplicate)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from mailroom.campaigns import campaign_services as cs
from mailroom.campaigns.models import Campaign, CampaignRecipient, CampaignTranslation
from mailroom.core.models import AuditLog
from mailroom.outgoing import services as outbox
from mailroom.outgoing.models import OutgoingMail, Purpose
from mailroom.routing.models import AliasDomain

pytestmark = pytest.mark.django_db
State = Campaign.State


@pytest.fixture
def domain(acme):
    return AliasDomain.objects.create(company=acme, name="news.acme.example")


@pytest.fixture
def draft(acme, mia, domain, newsletter):
    campaign = Campaign(company=acme, name="Spring news", subject="Hello {{ contact.name }}",
                        email_from="Acme <hello@news.acme.example>",
                        body_html="<p>Dear {{ contact.name }}, spring is here.</p>")
    return cs.save_campaign(campaign, actor=mia, lists=[newsletter])


def test_a_mail_manager_creates_a_campaign_and_it_is_audited(draft, mia):
    assert draft.pk and draft.state == State.DRAFT and draft.created_by == mia
    assert list(draft.lists.all()) == [draft.lists.get()]
    assert AuditLog.objects.filter(action="campaigns.campaign.create").count() == 1


def test_a_user_cannot_create_a_campaign(acme, bob, domain):
    campaign = Campaign(company=acme, name="x", subject="x", email_from="a@news.acme.example")
    with pytest.raises(PermissionDenied):
        cs.save_campaign(campaign, actor=bob)
    assert not Campaign.objects.exists()


def test_the_from_address_must_be_a_sending_domain_of_the_company(acme, mia, domain):
    campaign = Campaign(company=acme, name="x", subject="x", email_from="me@gmail.example")
    with pytest.raises(ValidationError) as caught:
        cs.save_campaign(campaign, actor=mia)
    message = caught.value.message_dict["email_from"][0]
    assert "gmail.example is not one of this company's sending domains" in message
    assert "news.acme.example" in message


def test_another_companys_list_is_refused(acme, mia, domain, globex_list):
    campaign = Campaign(company=acme, name="x", subject="x", email_from="a@news.acme.example")
    with pytest.raises(ValidationError) as caught:
        cs.save_campaign(campaign, actor=mia, lists=[globex_list])
    assert "another company" in caught.value.message_dict["lists"][0]


def test_a_broken_placeholder_is_a_line_on_its_field(draft, mia):
    draft.body_html = "<p>{% if %}</p>"
    draft.subject = "Hi\nthere"
    with pytest.raises(ValidationError) as caught:
        cs.save_campaign(draft, actor=mia)
    assert set(caught.value.message_dict) == {"body_html", "subject"}


def test_send_now_needs_a_body_and_a_list(acme, mia, domain):
    campaign = cs.save_campaign(Campaign(company=acme, name="x", subject="x",
                                         email_from="a@news.acme.example"), actor=mia)
    with pytest.raises(ValidationError) as caught:
        cs.send_now(campaign, actor=mia)
    assert "body_html" in caught.value.message_dict
    campaign.body_html = "<p>Hi</p>"
    cs.save_campaign(campaign, actor=mia)
    with pytest.raises(ValidationError) as caught:
        cs.send_now(campaign, actor=mia)
    assert "lists" in caught.value.message_dict


def test_send_now_hands_the_campaign_to_the_worker_and_freezes_it(draft, mia):
    sent = cs.send_now(draft, actor=mia)
    assert sent.state == State.PREPARING and sent.started_at
    sent.name = "Renamed"
    with pytest.raises(ValidationError, match="can no longer be changed"):
        cs.save_campaign(sent, actor=mia)
    with pytest.raises(ValidationError, match="cannot be sent"):
        cs.send_now(sent, actor=mia)


def test_schedule_in_the_future_only_and_back_to_draft(draft, mia):
    with pytest.raises(ValidationError):
        cs.schedule(draft, timezone.now() - timedelta(minutes=1), actor=mia)
    at = timezone.now() + timedelta(days=1)
    scheduled = cs.schedule(draft, at, actor=mia)
    assert scheduled.state == State.SCHEDULED and scheduled.scheduled_at == at
    assert cs.unschedule(scheduled, actor=mia).state == State.DRAFT


def test_pause_and_resume(draft, mia):
    running = cs.send_now(draft, actor=mia)
    paused = cs.pause(running, actor=mia)
    assert paused.state == State.PAUSED and "Paused by" in paused.state_reason
    assert cs.resume(paused, actor=mia).state == State.PREPARING
    with pytest.raises(ValidationError, match="cannot be resumed"):
        cs.resume(draft, actor=mia)


def test_cancel_drops_what_is_not_sent(acme, draft, mia):
    running = cs.send_now(draft, actor=mia)
    mail = outbox.enqueue(company=acme, email_from="a@news.acme.example",
                          to=["ada@client.example"], subject="x", html="<p>x</p>",
                          purpose=Purpose.BULK)
    queued = CampaignRecipient.objects.create(campaign=running, email="ada@client.example",
                                              status=CampaignRecipient.Status.QUEUED,
                                              mail=mail)
    pending = CampaignRecipient.objects.create(campaign=running, email="bo@client.example")
    cancelled = cs.cancel(running, actor=mia)
    assert cancelled.state == State.CANCELLED and cancelled.finished_at
    mail.refresh_from_db()
    assert mail.state == OutgoingMail.State.CANCELLED
    assert "cancelled before this mail was sent" in mail.failure_reason
    for trace in (queued, pending):
        trace.refresh_from_db()
        assert trace.status == CampaignRecipient.Status.CANCELLED


def test_duplicate_copies_texts_lists_and_translations(draft, mia):
    cs.save_translation(draft, "fr", subject="Bonjour", body_html="<p>Le printemps</p>",
                        actor=mia)
    copy = cs.duplicate(draft, actor=mia)
    assert copy.pk != draft.pk and copy.name == "Spring news (copy)"
    assert copy.state == State.DRAFT
    assert list(copy.lists.all()) == list(draft.lists.all())
    assert CampaignTranslation.objects.get(campaign=copy).subject == "Bonjour"


def test_a_translation_with_nothing_in_it_is_removed(draft, mia):
    cs.save_translation(draft, "de_DE", subject="Hallo", body_html="<p>x</p>", actor=mia)
    cs.save_translation(draft, "de-DE", subject="", body_html="", actor=mia)
    assert not draft.translations.exists()
    with pytest.raises(ValidationError):
        cs.save_translation(draft, "xx-nonsense-1", subject="a", actor=mia)


def test_another_companys_manager_cannot_touch_it(draft, gina):
    with pytest.raises(PermissionDenied):
        cs.pause(draft, actor=gina)


def test_a_domain_failing_the_deliverability_check_needs_a_reason(draft, mia, settings):
    settings.MAILROOM_CAMPAIGN_DNS_CHECK = True  # the test zone publishes nothing for it
    with pytest.raises(ValidationError) as caught:
        cs.send_now(draft, actor=mia)
    assert "news.acme.example fails the deliverability check (SPF" in caught.value.messages[0]
    assert Campaign.objects.get().state == State.DRAFT
    draft.deliverability_override = "The DNS change is on its way; the partners expect it."
    cs.save_campaign(draft, actor=mia)
    assert cs.send_now(draft, actor=mia).state == State.PREPARING
    override = AuditLog.objects.get(action="campaigns.campaign.deliverability_override")
    assert override.after["reason"].startswith("The DNS change")
    assert "SPF" in override.after["failing"]


def test_segments_are_part_of_the_audience_and_of_the_copy(draft, mia, acme, globex):
    from mailroom.campaigns.models import Segment

    ours = Segment.objects.create(company=acme, name="Belgians", rules=[])
    theirs = Segment.objects.create(company=globex, name="Theirs", rules=[])
    with pytest.raises(ValidationError) as caught:
        cs.save_campaign(draft, actor=mia, segments=[theirs])
    assert "segment belongs to another company" in caught.value.message_dict["segments"][0]
    cs.save_campaign(draft, actor=mia, segments=[ours])
    assert list(cs.duplicate(draft, actor=mia).segments.all()) == [ours]
