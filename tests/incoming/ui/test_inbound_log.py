"""The inbound log, its quarantine, the raw download and Reprocess; company isolation."""

from __future__ import annotations

from django.urls import reverse

from mailroom.core.models import AuditLog
from mailroom.incoming.models import InboundMail
from tests.incoming.ui.conftest import RAW, stored_mail

LOG = reverse("admin:incoming_inboundmail_changelist")
QUARANTINE = LOG + "?state__exact=quarantined"


def detail(mail) -> str:
    return reverse("admin:incoming_inboundmail_change", args=[mail.pk])


def raw_url(mail) -> str:
    return reverse("incoming:raw", args=[mail.pk])


def routed(acme, lead):
    from django.contrib.contenttypes.models import ContentType

    return stored_mail(
        acme, state="done", decision="created", rule="post", subject="Big deal follow-up",
        from_address="ada@client.example", reason="Created a Lead (alias sales@acme.test).",
        auth_summary="spf=pass dkim=pass dmarc=pass",
        content_type=ContentType.objects.get_for_model(lead), object_id=lead.pk,
        trace=[{"rule": "duplicate", "note": "First time seen."},
               {"rule": "post", "note": "Created a Lead.", "decision": "created"}])


def test_log_lists_with_badge_record_link_and_filters(client_for, bob, acme, lead,
                                                      quarantined):
    mail = routed(acme, lead)
    client = client_for(bob)
    html = client.get(LOG).content.decode()
    assert "Big deal follow-up" in html and "Printer on fire" in html
    assert "Created a record" in html
    assert reverse("admin:crm_lead_change", args=[lead.pk]) in html
    assert "support@acme.test" in html  # envelope recipient
    html = client.get(LOG + "?decision__exact=created").content.decode()
    assert "Big deal follow-up" in html and "Printer on fire" not in html
    html = client.get(LOG + "?q=fire-1@client.example").content.decode()
    assert "Printer on fire" in html
    assert client.get(LOG + "?source__exact=api").status_code == 200
    assert client.get(detail(mail)).status_code == 200


def test_detail_shows_trace_auth_and_links(client_for, mia, acme, lead):
    mail = routed(acme, lead)
    response = client_for(mia).get(detail(mail))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="inbound-trace"' in html and 'data-deciding="true"' in html
    assert "First time seen." in html and "Created a Lead." in html
    assert "spf=pass dkim=pass dmarc=pass" in html
    assert reverse("admin:crm_lead_change", args=[lead.pk]) in html
    assert raw_url(mail) in html
    assert "Download raw (.eml)" in html


def test_quarantine_lists_only_quarantined_with_the_error(client_for, mia, acme, quarantined):
    stored_mail(acme, state="done", subject="Routed fine", decision="posted")
    html = client_for(mia).get(QUARANTINE).content.decode()
    assert "Quarantine" in html
    assert "Printer on fire" in html and "Routed fine" not in html
    assert "the parser tripped on line 3" in html


def test_sidebar_has_the_group_and_the_quarantine_count(client_for, mia, quarantined):
    html = client_for(mia).get(LOG).content.decode()
    for title in ("Incoming mail", "Inbound log", "Quarantine", "Test an address",
                  "Incoming servers", "Aliases", "Alias domains", "Allowed senders"):
        assert title in html, title
    from django.test import RequestFactory

    from mailroom.incoming.views import quarantine_badge

    request = RequestFactory().get("/")
    request.user = mia
    assert quarantine_badge(request) == "1"


def test_raw_download_returns_the_exact_bytes(client_for, bob, acme):
    mail = stored_mail(acme)
    response = client_for(bob).get(raw_url(mail))
    assert response.status_code == 200
    assert response["Content-Type"] == "message/rfc822"
    assert response["Content-Disposition"].startswith("attachment")
    assert ".eml" in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == RAW


def test_raw_download_of_a_lost_or_unreachable_copy_says_so(client_for, bob, acme,
                                                            monkeypatch):
    from mailroom.core.blobs import BlobUnreachable, get_store
    from mailroom.incoming import services

    mail = stored_mail(acme)
    real = services.read_blob

    def down(sha256):
        raise BlobUnreachable("The bucket did not answer.")

    monkeypatch.setattr(services, "read_blob", down)
    busy = client_for(bob).get(raw_url(mail))
    assert busy.status_code == 503 and b"try again in a minute" in busy.content
    monkeypatch.setattr(services, "read_blob", real)
    get_store().path(mail.raw_sha256).unlink()
    assert client_for(bob).get(raw_url(mail)).status_code == 404


def test_another_company_gets_404_on_detail_and_raw(client_for, charlie, acme, quarantined):
    client = client_for(charlie)
    assert client.get(detail(quarantined)).status_code == 404
    assert client.get(raw_url(quarantined)).status_code == 404
    assert "Printer on fire" not in client.get(LOG).content.decode()


def test_reprocess_action_sends_quarantined_mail_back(client_for, mia, quarantined):
    response = client_for(mia).post(QUARANTINE, {
        "action": "reprocess_selected", "_selected_action": [quarantined.pk]}, follow=True)
    quarantined.refresh_from_db()
    assert quarantined.state == InboundMail.State.RECEIVED and quarantined.error == ""
    assert "Sent back to the router: 1 message." in response.content.decode()
    assert AuditLog.objects.filter(action="incoming.inboundmail.reprocess", actor=mia).exists()


def test_reprocess_button_on_the_detail_page(client_for, mia, quarantined):
    client = client_for(mia)
    assert 'id="reprocess"' in client.get(detail(quarantined)).content.decode()
    response = client.post(reverse("incoming:reprocess", args=[quarantined.pk]), follow=True)
    quarantined.refresh_from_db()
    assert quarantined.state == "received"
    assert "Sent back to the router" in response.content.decode()


def test_a_user_cannot_reprocess(client_for, bob, quarantined):
    client = client_for(bob)
    assert 'id="reprocess"' not in client.get(detail(quarantined)).content.decode()
    response = client.post(reverse("incoming:reprocess", args=[quarantined.pk]), follow=True)
    assert "Only Mail Managers" in response.content.decode()
    client.post(QUARANTINE, {"action": "reprocess_selected",
                             "_selected_action": [quarantined.pk]})
    quarantined.refresh_from_db()
    assert quarantined.state == "quarantined"


def test_charlie_cannot_reprocess_acme_mail(client_for, charlie, quarantined):
    response = client_for(charlie).post(reverse("incoming:reprocess", args=[quarantined.pk]))
    assert response.status_code == 404
