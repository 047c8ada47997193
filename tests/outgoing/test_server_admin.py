"""Outgoing servers and DKIM keys in the back office: secrets, activation, Test connection."""

from __future__ import annotations

import socket

import pytest
from aiosmtpd.controller import Controller
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from mailroom.core.models import AuditLog
from mailroom.outgoing import server_services
from mailroom.outgoing.models import DkimKey, MailServer

SECRETS = {
    "password": "pw-Tr0ub4dor-value",
    "oauth_client_secret": "oauth-client-secret-value",
    "oauth_refresh_token": "refresh-token-value",
    "oauth_access_token": "access-token-value",
    "client_key": "-----BEGIN PRIVATE KEY-----\nclient-key-body-value\n-----END PRIVATE KEY-----",
}


def change_url(server) -> str:
    return reverse("admin:outgoing_mailserver_change", args=[server.pk])


def url_of_test(server) -> str:
    return reverse("admin:outgoing_mailserver_test", args=[server.pk])


@pytest.fixture
def server(acme):
    return MailServer.objects.create(company=acme, name="Relay", host="smtp.acme.example",
                                     username="acme", purpose="transactional", **SECRETS)


def form_data(server, **changes) -> dict:
    """What the change form posts when a person saves it without touching the secrets."""
    data = {
        "name": server.name, "company": server.company_id, "host": server.host,
        "port": server.port, "security": server.security, "auth": server.auth,
        "username": server.username, "oauth_provider": server.oauth_provider,
        "oauth_client_id": server.oauth_client_id,
        "client_certificate": server.client_certificate, "from_filter": server.from_filter,
        "sequence": server.sequence, "purpose": server.purpose,
        "rate_per_minute": "", "rate_per_hour": "", "rate_per_day": "",
        "max_per_connection": server.max_per_connection,
        "max_connections": server.max_connections, "max_message_size": "",
        "password": "", "oauth_client_secret": "", "oauth_refresh_token": "", "client_key": "",
    }
    if server.verify_certificate:
        data["verify_certificate"] = "on"
    if server.active:
        data["active"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


# ---------------------------------------------------------------- secrets
def test_change_page_never_renders_secrets(client_for, mia, server):
    client = client_for(mia)
    for url in (change_url(server), reverse("admin:outgoing_mailserver_changelist")):
        html = client.get(url).content.decode()
        for name, value in SECRETS.items():
            assert value not in html, name
        assert "client-key-body-value" not in html
    html = client.get(change_url(server)).content.decode()
    assert "A password is stored. Leave blank to keep it." in html
    assert 'type="password"' in html


def test_blank_password_keeps_the_stored_secret(client_for, mia, server):
    response = client_for(mia).post(change_url(server), form_data(server, rate_per_minute=60))
    assert response.status_code == 302, response.content.decode()[:3000]
    server.refresh_from_db()
    assert server.rate_per_minute == 60
    for name, value in SECRETS.items():
        assert getattr(server, name) == value, name


def test_new_password_replaces_it_and_the_audit_masks_it(client_for, mia, server):
    response = client_for(mia).post(change_url(server),
                                    form_data(server, password="brand-new-secret"))
    assert response.status_code == 302
    server.refresh_from_db()
    assert server.password == "brand-new-secret"
    row = AuditLog.objects.get(action="mailserver.update")
    assert row.after["password"] == "******** (replaced)"
    assert "brand-new-secret" not in str(row.before) + str(row.after)
    assert SECRETS["password"] not in str(row.before) + str(row.after)


def test_forget_secrets_erases_them(client_for, mia, server):
    client_for(mia).post(change_url(server), form_data(server, auth="none",
                                                       forget_secrets="on"))
    server.refresh_from_db()
    assert server.password == "" and server.client_key == "" and server.oauth_access_token == ""


# ---------------------------------------------------------------- test status and activation
def test_changing_the_connection_resets_the_test(client_for, mia, server):
    MailServer.objects.filter(pk=server.pk).update(test_status="ok", test_message="fine")
    server.refresh_from_db()
    client = client_for(mia)
    client.post(change_url(server), form_data(server, rate_per_hour=500))
    server.refresh_from_db()
    assert server.test_status == "ok"  # a sending rule is not the connection
    client.post(change_url(server), form_data(server, password="rotated"))
    server.refresh_from_db()
    assert server.test_status == "not_tested" and server.test_message == ""


def test_bulk_server_cannot_be_activated_before_a_passed_test(client_for, mia, acme):
    client = client_for(mia)
    add = reverse("admin:outgoing_mailserver_add")
    blank = MailServer(company=acme, name="Campaigns", host="bulk.acme.example",
                       purpose="bulk", active=True)
    response = client.post(add, form_data(blank))
    assert response.status_code == 200
    assert "Bulk sending needs a passed connection test" in response.content.decode()
    assert not MailServer.objects.filter(name="Campaigns").exists()
    response = client.post(add, form_data(blank, active=None))
    assert response.status_code == 302
    campaigns = MailServer.objects.get(name="Campaigns")
    assert not campaigns.active and campaigns.test_status == "not_tested"
    MailServer.objects.filter(pk=campaigns.pk).update(test_status="ok")
    campaigns.refresh_from_db()
    assert client.post(change_url(campaigns), form_data(campaigns, active="on")).status_code == 302
    campaigns.refresh_from_db()
    assert campaigns.active


def test_service_refuses_activation_naming_active(acme, mia):
    server = MailServer(company=acme, name="Both", host="x.acme.example", purpose="both",
                        active=True)
    with pytest.raises(ValidationError) as info:
        server_services.save_server(server, actor=mia)
    assert "active" in info.value.message_dict
    server.purpose = "transactional"
    server_services.save_server(server, actor=mia)  # transactional servers need no test
    assert AuditLog.objects.filter(action="mailserver.create").count() == 1


def test_only_mail_managers_of_the_company_configure_servers(acme, bob, charlie, server):
    with pytest.raises(PermissionDenied):
        server_services.save_server(server, actor=bob)
    with pytest.raises(PermissionDenied):
        server_services.save_server(server, actor=charlie)


def test_plain_user_and_other_company(client_for, bob, server, globex):
    from tests.conftest import make_user

    assert client_for(bob).get(change_url(server)).status_code == 403
    greta = make_user("greta", [globex], "Mail Manager")
    client = client_for(greta)
    assert client.get(change_url(server)).status_code == 404
    assert client.post(url_of_test(server)).status_code == 404


# ---------------------------------------------------------------- Test connection
class Accepting:
    async def handle_DATA(self, server, session, envelope):  # never reached by the test
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_peer():
    controller = Controller(Accepting(), hostname="127.0.0.1", port=free_port(),
                            data_size_limit=10_485_760)
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def loopback(acme, smtp_peer):
    return MailServer.objects.create(
        company=acme, name="Loopback", host="127.0.0.1", port=smtp_peer.port,
        security="none", auth="none", purpose="bulk", active=False)


def test_test_connection_button_against_a_real_smtp_server(client_for, mia, loopback):
    client = client_for(mia)
    html = client.get(change_url(loopback)).content.decode()
    assert url_of_test(loopback) in html and "Test connection" in html
    assert client.get(url_of_test(loopback)).status_code == 405  # POST only
    response = client.post(url_of_test(loopback), follow=True)
    assert response.redirect_chain[-1][0] == change_url(loopback)
    loopback.refresh_from_db()
    assert loopback.test_status == "ok", loopback.test_message
    assert loopback.tested_at is not None
    assert loopback.announced_size_limit == 10_485_760
    assert "connection test passed" in response.content.decode()
    assert AuditLog.objects.filter(action="mailserver.test", actor=mia).exists()
    # now the bulk server may be activated
    response = client.post(change_url(loopback), form_data(loopback, active="on"))
    assert response.status_code == 302
    loopback.refresh_from_db()
    assert loopback.active and loopback.test_status == "ok"


def test_failed_connection_is_reported_in_plain_words(client_for, mia, acme):
    dead = MailServer.objects.create(company=acme, name="Dead", host="127.0.0.1",
                                     port=free_port(), security="none", auth="none")
    response = client_for(mia).post(url_of_test(dead), follow=True)
    dead.refresh_from_db()
    assert dead.test_status == "failing" and dead.test_message
    html = response.content.decode()
    assert "connection test failed" in html and dead.test_message[:30] in html


def test_bulk_test_action(client_for, mia, loopback, acme):
    dead = MailServer.objects.create(company=acme, name="Dead", host="127.0.0.1",
                                     port=free_port(), security="none", auth="none")
    response = client_for(mia).post(
        reverse("admin:outgoing_mailserver_changelist"),
        {"action": "test_selected", "_selected_action": [loopback.pk, dead.pk]}, follow=True)
    html = response.content.decode()
    assert "Loopback: connection test passed" in html and "Dead: connection test failed" in html
    assert dict(MailServer.objects.values_list("name", "test_status")) == {
        "Loopback": "ok", "Dead": "failing"}


def test_plain_user_cannot_run_the_test(client_for, bob, loopback):
    assert client_for(bob).post(url_of_test(loopback)).status_code == 403
    loopback.refresh_from_db()
    assert loopback.test_status == "not_tested"


# ---------------------------------------------------------------- DKIM keys
def test_dkim_key_generated_from_domain_and_selector(client_for, mia, acme):
    client = client_for(mia)
    add = reverse("admin:outgoing_dkimkey_add")
    html = client.get(add).content.decode()
    assert 'name="domain"' in html and 'name="selector"' in html
    assert 'name="private_key"' not in html
    response = client.post(add, {"domain": "Acme.Example", "selector": "mr2026"}, follow=True)
    key = DkimKey.objects.get()
    assert (key.company, key.domain, key.selector) == (acme, "acme.example", "mr2026")
    assert key.private_key.startswith("-----BEGIN PRIVATE KEY-----")
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("admin:outgoing_dkimkey_change",
                                                     args=[key.pk])
    assert "mr2026._domainkey.acme.example" in html and key.dns_txt in html
    assert key.dns_txt.startswith("v=DKIM1; k=rsa; p=")
    body = key.private_key.splitlines()[1]
    assert body not in html
    row = AuditLog.objects.get(action="dkimkey.create")
    assert row.after["private_key"] == "********"


def test_dkim_duplicate_selector_and_bad_domain_are_form_errors(client_for, mia, acme):
    client = client_for(mia)
    add = reverse("admin:outgoing_dkimkey_add")
    client.post(add, {"domain": "acme.example", "selector": "mailroom"})
    html = client.post(add, {"domain": "acme.example", "selector": "mailroom"}).content.decode()
    assert "already has a key" in html
    html = client.post(add, {"domain": "not a domain", "selector": "x"}).content.decode()
    assert "Enter a domain such as example.com." in html
    assert DkimKey.objects.count() == 1


def test_plain_user_cannot_generate_dkim_keys(client_for, bob):
    assert client_for(bob).get(reverse("admin:outgoing_dkimkey_add")).status_code == 403


def test_saving_the_form_keeps_a_refresh_token_rotated_meanwhile(acme, mia):
    from mailroom.outgoing.forms import MailServerForm
    from mailroom.outgoing.models import MailServer
    from mailroom.outgoing.server_services import save_server

    server = MailServer.objects.create(
        company=acme, name="m365", host="smtp.office365.com", port=587,
        auth=MailServer.Auth.XOAUTH2, oauth_provider="microsoft", oauth_client_id="cid",
        oauth_client_secret="csecret", oauth_refresh_token="old-token", active=False)
    loaded = MailServer.objects.get(pk=server.pk)  # the admin opens the form
    # a worker rotates the token meanwhile
    MailServer.objects.filter(pk=server.pk).update(oauth_refresh_token="rotated-token")
    data = {f: getattr(loaded, f) for f in ("name", "host", "port", "security", "auth",
                                            "username", "oauth_provider", "oauth_client_id",
                                            "from_filter", "sequence", "purpose",
                                            "max_per_connection", "max_connections")}
    data.update(company=acme.pk, verify_certificate="on", client_certificate="",
                test_status="not_tested", consecutive_failures=0)
    form = MailServerForm(data=data, instance=loaded)
    assert form.is_valid(), form.errors
    save_server(form.save(commit=False), actor=mia)
    assert MailServer.objects.get(pk=server.pk).oauth_refresh_token == "rotated-token"
