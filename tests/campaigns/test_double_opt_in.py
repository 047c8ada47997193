"""Double opt-in: a new subscriber of such a list gets a confirmation mail (queued with the
subscription), the link's page confirms only on its button (a POST), the confirmation is
recorded as evidence, and an old link never brings back someone who left."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from mailroom.campaigns import services
from mailroom.campaigns.models import MailingList, Subscription
from mailroom.contacts.models import Partner
from mailroom.outgoing.models import OutgoingMail
from mailroom.routing.models import AliasDomain

pytestmark = pytest.mark.django_db


@pytest.fixture
def opt_in_list(acme, mia):
    AliasDomain.objects.create(company=acme, name="news.acme.example")
    return services.save_list(MailingList(company=acme, name="Weekly", double_opt_in=True),
                              actor=mia)


@pytest.fixture
def person(acme):
    return Partner.objects.create(company=acme, name="Ada", email="ada@client.example",
                                  language="fr_FR")


def confirm_path(mail: OutgoingMail) -> str:
    return re.search(r'href="https?://[^/"]+(/l/s/[^"]+)"', mail.body_html).group(1)


def test_the_confirmation_mail_goes_with_the_subscription(opt_in_list, person, mia):
    subscription = services.subscribe(opt_in_list, person, actor=mia,
                                      source=Subscription.Source.FORM, consent_how="Web form")
    assert subscription.status == Subscription.Status.UNCONFIRMED
    mail = OutgoingMail.objects.get()
    assert [r.address for r in mail.recipients.all()] == ["ada@client.example"]
    assert mail.email_from == "notifications@news.acme.example"
    assert "Weekly" in mail.subject
    assert "/l/s/" in mail.body_text  # the text part carries the link too
    # subscribing again changes nothing and sends nothing more
    services.subscribe(opt_in_list, person, actor=mia, source=Subscription.Source.FORM,
                       consent_how="Web form")
    assert OutgoingMail.objects.count() == 1


def test_the_link_confirms_on_its_button_only(opt_in_list, person, mia):
    services.subscribe(opt_in_list, person, actor=mia, source=Subscription.Source.API,
                       consent_how="API sign-up")
    path = confirm_path(OutgoingMail.objects.get())
    browser = Client(enforce_csrf_checks=False, REMOTE_ADDR="198.51.100.9")
    page = browser.get(path)
    assert page.status_code == 200 and b'id="yes"' in page.content
    assert Subscription.objects.get().status == Subscription.Status.UNCONFIRMED  # GET: nothing
    done = browser.post(path)
    assert done.status_code == 200 and b'id="outcome"' in done.content
    subscription = Subscription.objects.get()
    assert subscription.status == Subscription.Status.SUBSCRIBED and subscription.confirmed_at
    assert "confirmed by the link in the confirmation mail from 198.51.100.9" in \
        subscription.consent_how
    assert browser.post(path).status_code == 200  # again: still subscribed, nothing breaks
    assert Subscription.objects.get().confirmed_at == subscription.confirmed_at


def test_a_forged_link_is_a_404_and_an_old_link_brings_nobody_back(opt_in_list, person, mia):
    services.subscribe(opt_in_list, person, actor=mia, source=Subscription.Source.API,
                       consent_how="x")
    path = confirm_path(OutgoingMail.objects.get())
    token = path.rstrip("/").rsplit("/", 1)[1]
    forged = token[:-1] + ("b" if token[-1] != "b" else "c")
    assert Client().get(path.replace(token, forged)).status_code == 404
    services.unsubscribe(Subscription.objects.get(), actor=mia)
    page = Client().post(path)
    assert b'id="problem"' in page.content
    assert Subscription.objects.get().status == Subscription.Status.UNSUBSCRIBED


def test_imports_ask_no_confirmation(opt_in_list, person, mia):
    services.subscribe(opt_in_list, person, actor=mia, source=Subscription.Source.IMPORT,
                       consent_how="Trade fair")
    assert not OutgoingMail.objects.exists()
