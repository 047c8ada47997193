"""Test connection reaches any host and port an admin types, so it is counted: each run is
audited with the host it reached, and past the limit per user it is refused (issue 10, #8)."""

from __future__ import annotations

import socket

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from mailroom.core.models import AuditLog
from mailroom.incoming import services as incoming_services
from mailroom.incoming.models import IncomingServer
from mailroom.outgoing import server_services
from mailroom.outgoing.models import MailServer
from tests.conftest import PASSWORD, make_user


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def outgoing(acme):
    return MailServer.objects.create(company=acme, name="Probe", host="127.0.0.1",
                                     port=closed_port(), security="none", auth="none")


@pytest.fixture
def incoming(acme):
    return IncomingServer.objects.create(company=acme, name="Probe", host="127.0.0.1",
                                         port=closed_port(), security="none",
                                         username="u", password="p")


def test_each_run_is_audited_with_the_host_and_the_limit_is_shared(settings, mia, outgoing,
                                                                   incoming):
    settings.MAILROOM_CONNECTION_TEST_LIMIT = 4
    for _ in range(2):
        report = server_services.run_connection_test(outgoing, actor=mia)
        assert not report.ok
        ok, sentence = incoming_services.run_connection_test(incoming, actor=mia)
        assert not ok and sentence
    runs = AuditLog.objects.filter(actor=mia, action__in=["mailserver.test",
                                                          "incomingserver.test"])
    assert runs.count() == 4
    assert {(r.after["host"], r.after["port"]) for r in runs} == {
        ("127.0.0.1", outgoing.port), ("127.0.0.1", incoming.port)}
    with pytest.raises(PermissionDenied, match="4 connection tests"):
        server_services.run_connection_test(outgoing, actor=mia)
    with pytest.raises(PermissionDenied):
        incoming_services.run_connection_test(incoming, actor=mia)
    assert AuditLog.objects.filter(action="connection_test.refused", actor=mia).count() == 2
    # another Mail Manager has a budget of their own
    other = make_user("mo", [outgoing.company], "Mail Manager")
    assert not server_services.run_connection_test(outgoing, actor=other).ok


def test_the_back_office_says_why_a_test_was_refused(client, settings, mia, incoming):
    settings.MAILROOM_CONNECTION_TEST_LIMIT = 1
    assert client.login(username="mia", password=PASSWORD)
    url = reverse("admin:incoming_incomingserver_test", args=[incoming.pk])
    client.post(url)
    response = client.post(url, follow=True)
    messages = [(m.level_tag, m.message) for m in response.context["messages"]]
    assert messages[-1][0] == "error" and "1 connection tests" in messages[-1][1], messages
