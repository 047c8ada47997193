"""The Home page says "nothing leaves this machine" while the mail catcher's server is the
company's only active outgoing server, and stops saying it once a real one is active."""

from __future__ import annotations

import pytest

from mailroom.demo import services
from mailroom.outgoing.models import MailServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_hint_while_only_the_catcher_sends(acme, mia, bob, client_for, catcher):
    demo = services.create_demo_server(acme)
    html = client_for(mia).get("/").content.decode()
    assert 'id="home-catcher-hint"' in html
    assert "nothing leaves this machine" in html
    assert 'id="home-configure-server"' in html and "/outgoing/mailserver/add/" in html
    assert "/demo/caught-mail/" in html
    # a User cannot configure servers: the hint says who can, and shows no Caught mail link
    client = client_for(bob)
    html = client.get("/").content.decode()
    assert 'id="home-catcher-hint"' in html and 'id="home-configure-server"' not in html
    assert "/demo/caught-mail/" not in html
    client.logout()

    real = MailServer.objects.create(company=acme, name="Relay", host="smtp.acme.test",
                                     port=587)
    assert 'id="home-catcher-hint"' not in client_for(mia).get("/").content.decode()
    real.active = False
    real.save()
    demo.active = False
    demo.save()
    assert 'id="home-catcher-hint"' not in client_for(mia).get("/").content.decode()
