"""The campaign screens as people use them: the list, the editor (saves through the services,
refusals are red lines under their field), the live audience count, the campaign page with
its actions by state, the test send, the trace list and its CSV. Another company's campaign
is a 404; a User sees the page without buttons and gets a 403 on every POST."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from mailroom.campaigns import campaign_services as cs
from mailroom.campaigns import services
from mailroom.campaigns.models import (
    Campaign,
    CampaignRecipient,
    CampaignTranslation,
    MailingList,
)
from mailroom.contacts.models import Partner
from mailroom.core.models import AuditLog
from mailroom.outgoing.models import OutgoingMail
from mailroom.routing.models import AliasDomain

pytestmark = pytest.mark.django_db
State = Campaign.State


@pytest.fixture
def domain(acme):
    return AliasDomain.objects.create(company=acme, name="news.acme.example")


def person(company, name: str, email: str) -> Partner:
    return Partner.objects.create(company=company, name=name, email=email)


@pytest.fixture
def audience_lists(acme, mia, newsletter):
    """The newsletter with three people (one unsubscribed) and a "Staff" list to exclude."""
    staff = services.save_list(MailingList(company=acme, name="Staff"), actor=mia)
    ada = person(acme, "Ada", "ada@client.example")
    bea = person(acme, "Bea", "bea@client.example")
    cyd = person(acme, "Cyd", "cyd@client.example")
    for partner in (ada, bea, cyd):
        services.subscribe(newsletter, partner, actor=mia)
    services.unsubscribe(newsletter.subscriptions.get(partner=cyd), actor=mia)
    services.subscribe(staff, bea, actor=mia)
    return newsletter, staff


@pytest.fixture
def draft(acme, mia, domain, newsletter):
    return cs.save_campaign(Campaign(
        company=acme, name="Spring news", subject="Hello {{ contact.name }}",
        email_from="Acme <hello@news.acme.example>",
        body_html="<p>Dear {{ contact.name }}, spring is here.</p>"), actor=mia,
        lists=[newsletter])


def text(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode("utf-8-sig")
    return response.content.decode()


def page_url(campaign) -> str:
    return f"/campaigns/c/{campaign.pk}/"


def editor_data(newsletter, **overrides) -> dict:
    data = {"name": "Autumn news", "subject": "Hello {{ contact.name }}", "preview_text": "",
            "email_from": "Acme <hello@news.acme.example>", "reply_to": "",
            "layout": "branded", "lang": "", "body_html": "<p>Autumn is here.</p>",
            "lists": [str(newsletter.pk)], "track_opens": "on", "track_clicks": "on",
            "server": "", "bounce_limit": "5", "complaint_limit": "0.3", "guard_after": "200",
            "deliverability_override": "", "ab_sample": "20", "ab_metric": "opened",
            "ab_hours": "4",
            "translations-TOTAL_FORMS": "1", "translations-INITIAL_FORMS": "0",
            "translations-MIN_NUM_FORMS": "0", "translations-MAX_NUM_FORMS": "1000",
            "translations-0-lang": "de_DE", "translations-0-subject": "Hallo",
            "translations-0-preview_text": "", "translations-0-body_html": "<p>Herbst</p>",
            "_save": "Save"}
    data.update(overrides)
    return data


# --- list and editor -----------------------------------------------------------------------

def test_the_list_shows_state_and_links_each_row_to_its_page(client_for, mia, draft):
    response = client_for(mia).get("/campaigns/campaign/")
    body = text(response)
    assert response.status_code == 200
    assert "Spring news" in body and "Draft" in body
    assert f'href="{page_url(draft)}"' in body
    filtered = text(client_for(mia).get("/campaigns/campaign/?state__exact=done"))
    assert "Spring news" not in filtered


def test_the_editor_saves_through_the_services_with_translations(client_for, mia, domain,
                                                                 newsletter):
    client = client_for(mia)
    assert client.get("/campaigns/campaign/add/").status_code == 200
    response = client.post("/campaigns/campaign/add/", editor_data(newsletter))
    assert response.status_code == 302, text(response)
    campaign = Campaign.objects.get()
    assert campaign.name == "Autumn news" and campaign.created_by == mia
    assert list(campaign.lists.all()) == [newsletter]
    assert CampaignTranslation.objects.get(campaign=campaign).subject == "Hallo"
    assert AuditLog.objects.filter(action="campaigns.campaign.create").exists()
    assert AuditLog.objects.filter(action="campaigns.campaign.translation").exists()


def test_a_from_address_outside_the_sending_domains_is_a_red_line(client_for, mia, domain,
                                                                  newsletter):
    response = client_for(mia).post("/campaigns/campaign/add/", editor_data(
        newsletter, email_from="me@gmail.example"))
    body = text(response)
    assert response.status_code == 200
    assert "gmail.example is not one of this company" in body
    assert "errorlist" in body
    assert not Campaign.objects.exists() and not CampaignTranslation.objects.exists()


def test_a_broken_translation_rolls_back_the_whole_save(client_for, mia, draft, newsletter):
    response = client_for(mia).post(f"/campaigns/campaign/{draft.pk}/change/",
                                    editor_data(newsletter, **{
                                        "translations-0-body_html": "<p>{% if %}</p>"}))
    assert response.status_code == 200
    assert "de_DE:" in text(response)
    draft.refresh_from_db()
    assert draft.name == "Spring news"  # the campaign's own change was rolled back too


def test_the_editor_offers_only_the_companys_active_lists(client_for, mia, draft,
                                                         globex_list, acme):
    archived = services.save_list(MailingList(company=acme, name="Old list", active=False),
                                  actor=mia)
    body = text(client_for(mia).get(f"/campaigns/campaign/{draft.pk}/change/"))
    assert "Newsletter" in body
    assert "Globex news" not in body and archived.name not in body
    assert 'id="campaign-audience"' in body  # the live count beside the lists
    assert "templating/editor.js" in body  # the rich editor


def test_a_sent_campaign_opens_read_only_and_points_to_its_page(client_for, mia, draft,
                                                                newsletter):
    cs.send_now(draft, actor=mia)
    client = client_for(mia)
    body = text(client.get(f"/campaigns/campaign/{draft.pk}/change/"))
    assert "it can no longer be changed" in body and page_url(draft) in body
    assert 'name="_save"' not in body
    response = client.post(f"/campaigns/campaign/{draft.pk}/change/",
                           editor_data(newsletter))
    assert response.status_code == 403


# --- the live audience count ---------------------------------------------------------------

def test_the_audience_count_follows_the_ticked_lists(client_for, mia, draft, audience_lists):
    newsletter, staff = audience_lists
    client = client_for(mia)
    saved = text(client.get(f"/campaigns/c/audience/?campaign={draft.pk}"))
    assert saved.startswith("2 recipients") and "1 unsubscribed" in saved
    edited = text(client.get(f"/campaigns/c/audience/?campaign={draft.pk}&edited=1"
                             f"&lists={newsletter.pk}&exclude_lists={staff.pk}"))
    assert edited.startswith("1 recipient ·") and "excluded" in edited
    nothing = text(client.get(f"/campaigns/c/audience/?campaign={draft.pk}&edited=1"))
    assert "Choose one or more lists" in nothing
    # a new campaign (no id yet) counts for the current company's lists only
    fresh = text(client.get(f"/campaigns/c/audience/?edited=1&lists={newsletter.pk}"))
    assert fresh.startswith("2 recipients")


def test_the_audience_count_adds_the_ticked_segments(client_for, mia, acme, draft,
                                                     audience_lists):
    from mailroom.campaigns.models import Segment
    from mailroom.contacts.models import Partner

    Partner.objects.create(company=acme, name="Zoe", email="zoe@elsewhere.example",
                           country="BE")
    belgians = Segment.objects.create(company=acme, name="Belgians", rules=[
        {"field": "country", "op": "in", "value": ["BE"]}])
    newsletter, _ = audience_lists
    client = client_for(mia)
    only_segment = text(client.get(f"/campaigns/c/audience/?edited=1&segments={belgians.pk}"))
    assert only_segment.startswith("1 recipient")
    both = text(client.get(f"/campaigns/c/audience/?edited=1&lists={newsletter.pk}"
                           f"&segments={belgians.pk}"))
    assert both.startswith("3 recipients")


def test_the_audience_count_ignores_another_companys_lists(client_for, gina, globex_list,
                                                          draft, audience_lists):
    client = client_for(gina)
    assert client.get(f"/campaigns/c/audience/?campaign={draft.pk}").status_code == 404
    newsletter, _ = audience_lists
    body = text(client.get(f"/campaigns/c/audience/?edited=1&lists={newsletter.pk}"))
    assert "Choose one or more lists" in body


# --- the page: isolation and permissions ---------------------------------------------------

def test_another_companys_campaign_is_not_found(client_for, gina, draft):
    client = client_for(gina)
    for url in (page_url(draft), f"{page_url(draft)}progress/", f"{page_url(draft)}send/",
                f"{page_url(draft)}recipients.csv"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"{page_url(draft)}pause/").status_code == 404
    assert client.get(f"/campaigns/campaign/{draft.pk}/change/").status_code == 404


def test_a_user_sees_the_page_without_buttons_and_cannot_post(client_for, bob, draft):
    client = client_for(bob)
    body = text(client.get(page_url(draft)))
    assert "Spring news" in body and "Not sent yet" in body
    assert 'id="campaign-actions"' not in body and "Send test" not in body
    for action in ("send", "schedule", "pause", "resume", "cancel", "duplicate", "test",
                   "unschedule"):
        assert client.post(f"{page_url(draft)}{action}/").status_code == 403, action
    draft.refresh_from_db()
    assert draft.state == State.DRAFT


# --- the page: actions by state ------------------------------------------------------------

def test_send_now_confirms_with_the_audience_then_hands_it_to_the_worker(
        client_for, mia, draft, audience_lists):
    client = client_for(mia)
    body = text(client.get(page_url(draft)))
    assert f'href="{page_url(draft)}send/"' in body and "Duplicate" in body
    confirm = text(client.get(f"{page_url(draft)}send/"))
    assert "2 recipients" in confirm and "Send to everyone now" in confirm
    response = client.post(f"{page_url(draft)}send/", follow=True)
    body = text(response)
    assert "is on its way" in body
    draft.refresh_from_db()
    assert draft.state == State.PREPARING
    assert 'hx-trigger="every 2s"' in body  # the progress bar polls while preparing
    assert "Pause" in body and "Send now" not in body


def test_send_now_without_a_body_is_a_red_line(client_for, mia, acme, domain, newsletter):
    campaign = cs.save_campaign(Campaign(company=acme, name="Empty", subject="Hi",
                                         email_from="hello@news.acme.example"),
                                actor=mia, lists=[newsletter])
    body = text(client_for(mia).post(f"{page_url(campaign)}send/", follow=True))
    assert "Write the body first." in body
    campaign.refresh_from_db()
    assert campaign.state == State.DRAFT


def test_schedule_then_back_to_draft(client_for, mia, draft):
    client = client_for(mia)
    when = timezone.localtime() + timedelta(days=2)
    body = text(client.post(f"{page_url(draft)}schedule/",
                            {"scheduled_at": when.strftime("%Y-%m-%dT%H:%M")}, follow=True))
    assert "Scheduled: Will be sent on" in body
    draft.refresh_from_db()
    assert draft.state == State.SCHEDULED
    assert abs(draft.scheduled_at - when) < timedelta(minutes=1)
    past = text(client.post(f"{page_url(draft)}schedule/",
                            {"scheduled_at": "2001-01-01T10:00"}, follow=True))
    assert "Choose a time in the future." in past
    garbage = text(client.post(f"{page_url(draft)}schedule/", {"scheduled_at": "soon"},
                               follow=True))
    assert "Choose a date and time" in garbage
    body = text(client.post(f"{page_url(draft)}unschedule/", follow=True))
    assert "Back to draft" in body
    draft.refresh_from_db()
    assert draft.state == State.DRAFT


def test_pause_resume_cancel(client_for, mia, draft):
    cs.send_now(draft, actor=mia)
    client = client_for(mia)
    assert "Paused: nothing more goes out" in text(
        client.post(f"{page_url(draft)}pause/", follow=True))
    draft.refresh_from_db()
    assert draft.state == State.PAUSED
    assert "Resumed" in text(client.post(f"{page_url(draft)}resume/", follow=True))
    assert "Cancelled: mails not sent yet" in text(
        client.post(f"{page_url(draft)}cancel/", follow=True))
    draft.refresh_from_db()
    assert draft.state == State.CANCELLED
    again = text(client.post(f"{page_url(draft)}pause/", follow=True))
    assert "cannot be paused" in again  # the service's refusal, as a red line


def test_duplicate_opens_the_new_draft(client_for, mia, draft):
    response = client_for(mia).post(f"{page_url(draft)}duplicate/")
    copy = Campaign.objects.exclude(pk=draft.pk).get()
    assert response.status_code == 302 and response["Location"] == page_url(copy)
    assert copy.name == "Spring news (copy)" and copy.state == State.DRAFT


def test_test_send_queues_mails_and_says_so(client_for, mia, draft):
    client = client_for(mia)
    response = client.post(f"{page_url(draft)}test/",
                           {"addresses": "me@example.com, boss@example.com"},
                           headers={"HX-Request": "true"})
    body = text(response)
    assert "Test sent to me@example.com, boss@example.com." in body
    assert "mr-green-line" in body
    mails = OutgoingMail.objects.filter(subject__startswith="[Test]")
    assert mails.count() == 2
    bad = text(client.post(f"{page_url(draft)}test/", {"addresses": "not-an-address"},
                           headers={"HX-Request": "true"}))
    assert "mr-red-line" in bad and "not-an-address" in bad
    assert mails.count() == 2
    # without htmx: the same line on the page after the redirect
    body = text(client.post(f"{page_url(draft)}test/", {"addresses": "me@example.com"},
                            follow=True))
    assert "Test sent to me@example.com." in body


# --- progress, figures, traces -------------------------------------------------------------

def test_the_worker_queues_and_the_page_shows_the_traces(client_for, mia, draft,
                                                        audience_lists):
    from mailroom.campaigns.engine import step

    client = client_for(mia)
    cs.send_now(draft, actor=mia)
    while step.campaigns_step("test-worker"):
        pass
    draft.refresh_from_db()
    assert draft.state == State.SENDING and draft.queued == 2
    progress = client.get(f"{page_url(draft)}progress/", headers={"HX-Request": "true"})
    assert "hx-trigger" not in text(progress)
    assert progress["HX-Refresh"] == "true"  # the page reloads with the new buttons
    body = text(client.get(page_url(draft)))
    assert "2 of 2 mails queued" in body and "1 left out" in body
    assert "ada@client.example" in body and "cyd@client.example" in body
    assert "Unsubscribed" in body  # the exclusion, by reason
    only_excluded = text(client.get(f"{page_url(draft)}?status=excluded")).split(
        'id="campaign-traces"')[1]
    assert "cyd@client.example" in only_excluded and "ada@client.example" not in only_excluded


def test_the_recipients_csv_is_streamed_and_filterable(client_for, mia, draft,
                                                       audience_lists):
    from mailroom.campaigns.engine import step

    cs.send_now(draft, actor=mia)
    while step.campaigns_step("test-worker"):
        pass
    client = client_for(mia)
    response = client.get(f"{page_url(draft)}recipients.csv")
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text(response))))
    assert {row["email"] for row in rows} == {"ada@client.example", "bea@client.example",
                                              "cyd@client.example"}
    cyd = next(row for row in rows if row["email"] == "cyd@client.example")
    assert cyd["status"] == "excluded" and cyd["exclusion"] == "unsubscribed"
    queued = list(csv.DictReader(io.StringIO(text(client.get(
        f"{page_url(draft)}recipients.csv?status=queued")))))
    assert len(queued) == 2


def test_the_trace_list_is_paginated(client_for, mia, draft):
    CampaignRecipient.objects.bulk_create([
        CampaignRecipient(campaign=draft, email=f"p{i:03}@client.example", status="queued")
        for i in range(60)])
    client = client_for(mia)
    first = text(client.get(page_url(draft)))
    assert "Page 1 of 2" in first and "p000@client.example" in first
    assert "p059@client.example" not in first
    second = text(client.get(f"{page_url(draft)}?page=2"))
    assert "p059@client.example" in second
