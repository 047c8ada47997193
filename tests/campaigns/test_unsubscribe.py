"""RFC 8058 one-click unsubscribe and the preference centre, through the real URLs without
signing in: a forged token is refused, the one-click POST needs no CSRF token, the page form
does; every change keeps its evidence (how, when, IP) and is idempotent."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from mailroom.campaigns import links, services, suppression, tokens
from mailroom.campaigns.models import (
    Campaign,
    CampaignEvent,
    CampaignRecipient,
    MailingList,
    Subscription,
    Suppression,
)
from mailroom.core.models import AuditLog

Status = Subscription.Status


# --- shared with the other unsubscribe/suppression tests ---------------------------------------

def make_campaign(company, lists, **fields) -> Campaign:
    fields.setdefault("name", "Spring sale 2026")
    fields.setdefault("subject", "Our spring sale starts today")
    fields.setdefault("email_from", "Acme News <news@acme.example>")
    fields.setdefault("state", Campaign.State.SENDING)
    campaign = Campaign.objects.create(company=company, **fields)
    campaign.lists.set(lists)
    return campaign


def make_trace(campaign, partner, **fields) -> CampaignRecipient:
    fields.setdefault("status", CampaignRecipient.Status.QUEUED)
    return CampaignRecipient.objects.create(campaign=campaign, partner=partner,
                                            email=partner.email.lower(), name=partner.name,
                                            **fields)


def token_for(trace) -> str:
    return links.unsubscribe_token(trace.campaign.company_id, trace.pk)


@pytest.fixture
def subscribed(newsletter, customer, mia) -> Subscription:
    return services.subscribe(newsletter, customer, actor=mia, consent_how="Shop checkout")


@pytest.fixture
def product_news(acme, mia) -> MailingList:
    return services.save_list(MailingList(company=acme, name="Product news", public=True,
                                          description="New products, once a month"), actor=mia)


@pytest.fixture
def trace(acme, newsletter, customer, subscribed) -> CampaignRecipient:
    # an English mail: the page speaks the mail's language (acme's own is French)
    return make_trace(make_campaign(acme, [newsletter]), customer, lang="en_GB")


def one_click_path(token: str) -> str:
    return reverse("campaigns_public:one_click", args=[token])


def page_path(token: str) -> str:
    return reverse("campaigns_public:preferences", args=[token])


# --- one-click (RFC 8058) ------------------------------------------------------------------------

def test_the_mail_carries_absolute_urls_for_the_token(trace, settings):
    token = token_for(trace)
    assert links.one_click_url(token) == (settings.BASE_URL.rstrip("/")
                                          + f"/l/u/{token}/one-click")
    assert links.preferences_url(token).endswith(f"/l/u/{token}/")


def test_one_click_post_unsubscribes_without_login_or_csrf(trace, subscribed):
    client = Client(enforce_csrf_checks=True)  # a mail client: no cookie, no CSRF token
    response = client.post(one_click_path(token_for(trace)),
                           {"List-Unsubscribe": "One-Click"}, REMOTE_ADDR="198.51.100.7")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    subscribed.refresh_from_db()
    assert subscribed.status == Status.UNSUBSCRIBED and subscribed.unsubscribed_at
    assert "one-click unsubscribe from campaign “Spring sale 2026”" in subscribed.consent_how
    assert "IP 198.51.100.7" in subscribed.consent_how
    assert subscribed.consent_how.startswith("Shop checkout")  # the first consent is kept
    trace.refresh_from_db()
    assert trace.unsubscribed_at is not None
    [event] = CampaignEvent.objects.filter(recipient=trace)
    assert event.kind == CampaignEvent.Kind.UNSUBSCRIBED and "one-click" in event.detail

    # idempotent: a second POST (clients retry) changes nothing and adds no event
    first = trace.unsubscribed_at
    assert client.post(one_click_path(token_for(trace)),
                       {"List-Unsubscribe": "One-Click"}).status_code == 200
    trace.refresh_from_db()
    assert trace.unsubscribed_at == first
    assert CampaignEvent.objects.filter(recipient=trace).count() == 1


def test_one_click_leaves_only_the_campaigns_lists(trace, customer, product_news, mia):
    other = services.subscribe(product_news, customer, actor=mia, consent_how="Form")
    Client().post(one_click_path(token_for(trace)), {"List-Unsubscribe": "One-Click"})
    other.refresh_from_db()
    assert other.status == Status.SUBSCRIBED
    assert not Suppression.objects.exists()  # not "unsubscribe from all"


def test_one_click_from_a_campaign_without_lists_suppresses_the_address(acme, customer):
    trace = make_trace(make_campaign(acme, []), customer)
    Client().post(one_click_path(token_for(trace)), {"List-Unsubscribe": "One-Click"})
    assert suppression.is_suppressed(acme, "ADA@client.example")


@pytest.mark.parametrize("forge", ["edited", "other_purpose", "other_company", "garbage"])
def test_a_forged_token_is_refused_with_a_short_plain_404(trace, subscribed, globex, forge):
    token = token_for(trace)
    bad = {
        "edited": token[:-1] + ("a" if token[-1] != "a" else "b"),
        "other_purpose": tokens.make(tokens.TRACK, trace.campaign.company_id, trace.pk),
        "other_company": links.unsubscribe_token(globex.pk, trace.pk),
        "garbage": "x" * 30,
    }[forge]
    client = Client(enforce_csrf_checks=True)
    for response in (client.post(one_click_path(bad), {"List-Unsubscribe": "One-Click"}),
                     client.get(page_path(bad))):
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/plain")
        assert b"not valid" in response.content and b"<" not in response.content
    subscribed.refresh_from_db()
    assert subscribed.status == Status.SUBSCRIBED


def test_get_on_the_one_click_url_shows_the_page_and_changes_nothing(trace, subscribed):
    response = Client().get(one_click_path(token_for(trace)))
    assert response.status_code == 200
    html = response.content.decode()
    assert "ada@client.example" in html and "Acme Corp" in html and "Newsletter" in html
    assert f'action="{page_path(token_for(trace))}"' in html  # its form posts to the page
    assert response.cookies["csrftoken"].value  # so that form's POST passes the CSRF check
    subscribed.refresh_from_db()
    assert subscribed.status == Status.SUBSCRIBED and not CampaignEvent.objects.exists()


# --- the preference centre -----------------------------------------------------------------------

def _csrf_client(token: str) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    response = client.get(page_path(token))
    assert response.status_code == 200
    return client, response.cookies["csrftoken"].value


def test_the_page_lists_the_campaigns_lists_and_every_public_one(trace, product_news, acme,
                                                                   mia):
    services.save_list(MailingList(company=acme, name="Internal VIPs"), actor=mia)  # private
    response = Client().get(page_path(token_for(trace)))
    choices = {c.mailing_list.name: (c.subscribed, c.sent_to)
               for c in response.context["choices"]}
    assert choices == {"Newsletter": (True, True), "Product news": (False, False)}
    html = response.content.decode()
    assert "Save my choices" in html and "Unsubscribe from all" in html
    assert "<link" not in html and "http" not in html.split("<body>")[0]  # no CDN


def test_the_page_form_is_csrf_protected(trace, subscribed):
    response = Client(enforce_csrf_checks=True).post(page_path(token_for(trace)),
                                                     {"action": "save"})
    assert response.status_code == 403
    subscribed.refresh_from_db()
    assert subscribed.status == Status.SUBSCRIBED


def test_save_my_choices_joins_with_evidence_and_leaves(trace, subscribed, product_news,
                                                       customer):
    client, csrf = _csrf_client(token_for(trace))
    response = client.post(page_path(token_for(trace)),
                           {"csrfmiddlewaretoken": csrf, "action": "save",
                            "list": [str(product_news.pk)]}, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 200
    text = response.content.decode()
    assert "You are subscribed to “Product news”." in text
    assert "You are unsubscribed from “Newsletter”." in text
    joined = Subscription.objects.get(mailing_list=product_news, partner=customer)
    assert joined.status == Status.SUBSCRIBED and joined.source == Subscription.Source.FORM
    assert joined.consent_ip == "203.0.113.9" and joined.consent_at is not None
    assert "preference centre" in joined.consent_how
    subscribed.refresh_from_db()
    assert subscribed.status == Status.UNSUBSCRIBED and "IP 203.0.113.9" in subscribed.consent_how
    trace.refresh_from_db()
    assert trace.unsubscribed_at is not None

    # saving the same choices again changes nothing
    response = client.post(page_path(token_for(trace)),
                           {"csrfmiddlewaretoken": csrf, "action": "save",
                            "list": [str(product_news.pk)]})
    assert "nothing needed to change" in response.content.decode()


def test_unsubscribe_from_all_then_resubscribe_is_their_own_new_consent(
        trace, subscribed, product_news, customer, mia, acme):
    services.subscribe(product_news, customer, actor=mia, consent_how="Form")
    client, csrf = _csrf_client(token_for(trace))
    response = client.post(page_path(token_for(trace)),
                           {"csrfmiddlewaretoken": csrf, "action": "unsubscribe_all"},
                           REMOTE_ADDR="203.0.113.9")
    assert "unsubscribed from all mailings of Acme Corp" in response.content.decode()
    assert set(Subscription.objects.values_list("status", flat=True)) == {Status.UNSUBSCRIBED}
    row = Suppression.objects.get(company=acme, email="ada@client.example")
    assert row.reason == Suppression.Reason.UNSUBSCRIBED and "203.0.113.9" in row.note
    assert [c.subscribed for c in response.context["choices"]] == [False, False]

    # checking a list again: resubscribed with new evidence, their own suppression lifted
    response = client.post(page_path(token_for(trace)),
                           {"csrfmiddlewaretoken": csrf, "action": "save",
                            "list": [str(subscribed.mailing_list_id)]},
                           REMOTE_ADDR="203.0.113.10")
    assert "You are subscribed to “Newsletter”." in response.content.decode()
    subscribed.refresh_from_db()
    assert subscribed.status == Status.SUBSCRIBED and subscribed.unsubscribed_at is None
    assert subscribed.consent_ip == "203.0.113.10" and subscribed.source == "form"
    assert not suppression.is_suppressed(acme, "ada@client.example")
    assert AuditLog.objects.filter(action="campaigns.suppression.remove").exists()


def test_a_blacklisted_contact_cannot_resubscribe_and_reads_why(trace, subscribed, customer):
    services.unsubscribe(subscribed, actor=None)
    customer.is_blacklisted = True
    customer.save(update_fields=["is_blacklisted"])
    client, csrf = _csrf_client(token_for(trace))
    response = client.post(page_path(token_for(trace)),
                           {"csrfmiddlewaretoken": csrf, "action": "save",
                            "list": [str(subscribed.mailing_list_id)]})
    assert response.status_code == 400
    assert "no longer sends mailings to this address" in response.content.decode()
    subscribed.refresh_from_db()
    assert subscribed.status == Status.UNSUBSCRIBED


def test_the_page_speaks_the_mails_language(trace):
    trace.lang = "fr_FR"
    trace.save(update_fields=["lang"])
    response = Client().get(page_path(token_for(trace)))
    assert '<html lang="fr-fr">' in response.content.decode()


def test_unsubscribe_from_the_lists_this_mail_came_through(trace, subscribed, product_news,
                                                          customer, mia):
    other = services.subscribe(product_news, customer, actor=mia, consent_how="Form")
    client, csrf = _csrf_client(token_for(trace))
    page = client.get(page_path(token_for(trace))).content.decode()
    assert "Unsubscribe from “Newsletter”" in page
    response = client.post(page_path(token_for(trace)),
                           {"csrfmiddlewaretoken": csrf, "action": "leave"},
                           REMOTE_ADDR="203.0.113.9")
    assert "Done: you are unsubscribed from “Newsletter”." in response.content.decode()
    assert "Unsubscribe from “Newsletter”" not in response.content.decode()  # nothing to leave
    subscribed.refresh_from_db()
    other.refresh_from_db()
    assert subscribed.status == Status.UNSUBSCRIBED and other.status == Status.SUBSCRIBED
    assert "preference centre from campaign" in subscribed.consent_how
    trace.refresh_from_db()
    assert trace.unsubscribed_at is not None
    assert CampaignEvent.objects.filter(recipient=trace).count() == 1
