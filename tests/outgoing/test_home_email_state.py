"""The Home page's email state: queued / failed / needing attention / sent of the current
company, each linking to the hub filtered to exactly those mails."""

from __future__ import annotations

import re

import pytest

from mailroom.outgoing import services
from mailroom.outgoing.models import MailServer, OutgoingMail

State = OutgoingMail.State


def queue(company, subject: str, state: str) -> OutgoingMail:
    mail = services.enqueue(company=company, email_from="hello@acme.test",
                            to=["ada@client.example"], subject=subject, text="Hi")
    OutgoingMail.objects.filter(pk=mail.pk).update(state=state)  # as the sender leaves it
    return mail


def panel(html: str) -> dict[str, tuple[int, str]]:
    """state key -> (count shown, link)"""
    found = re.findall(r'<a class="mr-count[^"]*" href="([^"]+)" data-email-state="(\w+)"'
                       r'.*?<span class="mr-count-n">(\d+)</span>', html, re.S)
    return {key: (int(count), link.replace("&amp;", "&")) for link, key, count in found}


@pytest.fixture
def mails(acme, globex):
    return {
        "queued": [queue(acme, "Waiting 1", State.OUTGOING), queue(acme, "Waiting 2",
                                                                   State.OUTGOING)],
        "failed": [queue(acme, "Bounced off", State.EXCEPTION)],
        "attention": [queue(acme, "Retrying", State.DEFERRED),
                      queue(acme, "Maybe twice", State.UNCERTAIN)],
        "sent": [queue(acme, "Done", State.SENT)],
        "other": [queue(globex, "Globex failed", State.EXCEPTION)],
    }


def test_counts_and_links_into_the_hub(mails, mia, client_for):
    client = client_for(mia)
    shown = panel(client.get("/").content.decode())
    assert {key: count for key, (count, _) in shown.items()} == {
        "queued": 2, "failed": 1, "attention": 2, "sent": 1}
    for key in ("queued", "failed", "attention", "sent"):
        hub = client.get(shown[key][1])
        assert hub.status_code == 200, key
        listed = set(re.findall(r"(Waiting \d|Bounced off|Retrying|Maybe twice|Done|Globex "
                                r"failed)", hub.content.decode()))
        assert listed == {mail.subject for mail in mails[key]}, key


def test_no_active_server_is_said_with_a_way_to_add_one(acme, mia, bob, client_for):
    html = client_for(mia).get("/").content.decode()
    assert 'id="home-no-server"' in html and "/outgoing/mailserver/add/" in html
    MailServer.objects.create(company=acme, name="Relay", host="smtp.acme.test", port=587)
    assert 'id="home-no-server"' not in client_for(mia).get("/").content.decode()


def test_users_without_the_hub_see_no_email_state(acme, mia, client_for):
    from django.contrib.auth.models import Permission

    mia.groups.first().permissions.remove(
        *Permission.objects.filter(codename="view_outgoingmail"))
    mia.user_permissions.clear()
    assert 'id="home-email-state"' not in client_for(mia).get("/").content.decode()
