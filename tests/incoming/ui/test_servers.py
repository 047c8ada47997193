"""Incoming servers in the back office: secrets write-only, Test, Fetch now, who may change."""

from __future__ import annotations

import socket

import pytest
from django.urls import reverse

from mailroom.core.models import AuditLog
from mailroom.incoming.models import IncomingServer

SECRETS = {"password": "imap-pass-Tr0ub4dor", "oauth_client_secret": "client-secret-value",
           "oauth_refresh_token": "refresh-token-value",
           "oauth_access_token": "access-token-value"}
LIST = reverse("admin:incoming_incomingserver_changelist")


def change_url(server) -> str:
    return reverse("admin:incoming_incomingserver_change", args=[server.pk])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(acme):
    return IncomingServer.objects.create(company=acme, name="Support inbox",
                                         host="imap.acme.example", username="support",
                                         **SECRETS)


def form_data(server, **changes) -> dict:
    data = {
        "name": server.name, "company": server.company_id, "kind": server.kind,
        "host": server.host, "port": server.port or "", "security": server.security,
        "verify_certificate": "on", "ca_certificate": "", "auth": server.auth,
        "username": server.username, "oauth_provider": server.oauth_provider,
        "oauth_client_id": server.oauth_client_id, "folder": server.folder,
        "move_to": server.move_to, "fetch_interval": server.fetch_interval,
        "fallback_record_type": "", "keep_attachments": "on",
        "trusted_authserv_id": "", "active": "on",
        "password": "", "oauth_client_secret": "", "oauth_refresh_token": "",
    }
    data.update(changes)
    return data


def test_list_and_form_render_without_secrets(client_for, mia, server):
    client = client_for(mia)
    for target in (LIST, change_url(server), reverse("admin:incoming_incomingserver_add")):
        response = client.get(target)
        assert response.status_code == 200, target
        html = response.content.decode()
        for name, value in SECRETS.items():
            assert value not in html, name
    html = client.get(change_url(server)).content.decode()
    assert "A password is stored. Leave blank to keep it." in html
    for group in ("Connection", "Login", "Mailbox", "Processing", "Status"):
        assert group in html
    assert "imap.acme.example" in client.get(LIST).content.decode()


def test_blank_secrets_keep_the_stored_ones_and_the_save_is_audited(client_for, mia, server):
    response = client_for(mia).post(change_url(server), form_data(server, fetch_interval=15))
    assert response.status_code == 302, response.content.decode()[:3000]
    server.refresh_from_db()
    assert server.fetch_interval == 15
    for name, value in SECRETS.items():
        assert getattr(server, name) == value, name
    row = AuditLog.objects.get(action="incoming.server.change")
    assert row.actor == mia
    assert SECRETS["password"] not in str(row.before) + str(row.after)


def test_a_new_password_replaces_the_old(client_for, mia, server):
    client_for(mia).post(change_url(server), form_data(server, password="brand-new"))
    server.refresh_from_db()
    assert server.password == "brand-new"


def test_service_errors_show_on_the_field(client_for, mia, server):
    response = client_for(mia).post(change_url(server), form_data(server, username=""))
    assert response.status_code == 200
    assert "username" in response.context["adminform"].form.errors


def test_a_user_cannot_see_or_change_servers(client_for, bob, server):
    client = client_for(bob)
    assert client.get(LIST).status_code == 403
    assert client.post(change_url(server), form_data(server, name="Hijacked")).status_code \
        == 403
    server.refresh_from_db()
    assert server.name == "Support inbox"


def test_another_company_gets_404(client_for, charlie, server):
    assert client_for(charlie).get(change_url(server)).status_code in (403, 404)


def test_test_against_a_closed_port_is_a_red_message(client_for, mia, acme):
    server = IncomingServer.objects.create(company=acme, name="Local", host="127.0.0.1",
                                           port=closed_port(), security="none",
                                           username="u", password="p")
    response = client_for(mia).post(
        reverse("admin:incoming_incomingserver_test", args=[server.pk]), follow=True)
    messages = [(m.level_tag, m.message) for m in response.context["messages"]]
    assert messages and messages[0][0] == "error", messages
    assert "connection test failed" in messages[0][1]
    assert "Traceback" not in response.content.decode()


def test_fetch_now_sets_the_next_fetch_through_the_service(client_for, mia, server):
    from datetime import timedelta

    from django.utils import timezone

    IncomingServer.objects.filter(pk=server.pk).update(
        next_fetch_at=timezone.now() + timedelta(hours=1))
    response = client_for(mia).post(LIST, {"action": "fetch_now_selected",
                                           "_selected_action": [server.pk]}, follow=True)
    server.refresh_from_db()
    assert server.next_fetch_at <= timezone.now()
    assert "fetched at the next worker pass" in response.content.decode()
    assert AuditLog.objects.filter(action="incoming.server.fetch_now", actor=mia).exists()


def test_saving_keeps_secrets_not_typed_even_if_the_fetcher_rotated_them(server, mia):
    from mailroom.incoming.services import save_server

    form_copy = IncomingServer.objects.get(pk=server.pk)  # the form opens
    IncomingServer.objects.filter(pk=server.pk).update(oauth_access_token="rotated-token")
    form_copy.password, form_copy._entered_secrets = "new-pass", {"password"}
    save_server(form_copy, actor=mia)
    stored = IncomingServer.objects.get(pk=server.pk)
    assert (stored.password, stored.oauth_access_token) == ("new-pass", "rotated-token")
    stored.oauth_refresh_token, stored._entered_secrets = "new-grant", {"oauth_refresh_token"}
    stored.oauth_access_token = ""
    save_server(stored, actor=mia)
    stored = IncomingServer.objects.get(pk=server.pk)
    assert (stored.oauth_refresh_token, stored.oauth_access_token) == ("new-grant", "")


def test_deleting_a_server_is_audited_and_only_for_mail_managers(server, bob, mia):
    from django.core.exceptions import PermissionDenied

    from mailroom.incoming.services import delete_server

    with pytest.raises(PermissionDenied):
        delete_server(server, actor=bob)
    delete_server(server, actor=mia)
    assert not IncomingServer.objects.exists()
    assert AuditLog.objects.filter(action="incoming.server.delete").exists()
