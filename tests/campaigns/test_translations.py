"""What recipients read speaks their language: the campaign footer, the confirmation mail
and the preference centre, in French, German and Spanish (campaigns/locale)."""

from __future__ import annotations

import pytest
from django.test import Client

from mailroom.campaigns import services
from mailroom.campaigns.engine.render import CampaignRenderer
from mailroom.campaigns.models import CampaignRecipient, MailingList, Subscription
from mailroom.contacts.models import Partner
from mailroom.outgoing.models import OutgoingMail
from mailroom.routing.models import AliasDomain
from tests.campaigns.test_engine import campaign
from tests.campaigns.test_unsubscribe import make_campaign, make_trace, page_path, token_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("lang", "words"), [
    ("fr_FR", "Se désinscrire"), ("de_DE", "Abmelden"), ("es_ES", "Darse de baja")])
def test_the_footer_speaks_the_mail_language(acme, lang, words):
    sent = campaign(acme, lang=lang, body_html="<p>Hi {{ contact.name }}</p>")
    mail = CampaignRenderer(sent).render(CampaignRecipient(campaign=sent, email="a@b.example",
                                                           name="Ada", lang=lang, id=1))
    assert words in mail.html and words in mail.text


def test_the_confirmation_mail_is_french_for_a_french_contact(acme, mia):
    AliasDomain.objects.create(company=acme, name="news.acme.example")
    weekly = services.save_list(MailingList(company=acme, name="Hebdo", double_opt_in=True),
                                actor=mia)
    person = Partner.objects.create(company=acme, name="Claire", email="claire@client.example",
                                    language="fr_FR")
    services.subscribe(weekly, person, actor=mia, source=Subscription.Source.FORM,
                       consent_how="Formulaire")
    mail = OutgoingMail.objects.get()
    assert mail.subject == "Merci de confirmer votre inscription à Hebdo"
    assert "Oui, inscrivez-moi" in mail.body_html


def test_the_preference_centre_is_german_for_a_german_recipient(acme, newsletter, customer):
    sent = make_campaign(acme, [newsletter])
    trace = make_trace(sent, customer, lang="de_DE")
    page = Client().get(page_path(token_for(trace)))
    assert "Ihre E-Mail-Einstellungen" in page.content.decode()
    assert "Auswahl speichern" in page.content.decode()
