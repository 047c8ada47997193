"""The back office: lists show the current company; other companies' rows are 404 by URL."""

from django.urls import reverse


def test_lead_list_shows_only_current_company(client_for, lead, globex_lead, dana):
    page = client_for(dana).get(reverse("admin:crm_lead_changelist"))
    assert page.status_code == 200
    assert b"Big deal" in page.content
    assert b"Globex secret deal" not in page.content


def test_other_company_record_is_404_by_url(client_for, lead, charlie):
    client = client_for(charlie)
    for name in ("admin:crm_lead_change", "admin:crm_lead_history"):
        assert client.get(reverse(name, args=[lead.pk])).status_code == 404, name
    # delete is refused before lookup: same answer as for an id that does not exist
    mine = client.get(reverse("admin:crm_lead_delete", args=[lead.pk])).status_code
    missing = client.get(reverse("admin:crm_lead_delete", args=[999999])).status_code
    assert mine == missing
    assert b"Big deal" not in client.get(reverse("admin:crm_lead_changelist")).content


def test_editing_through_admin_tracks_changes(client_for, lead, bob):
    client = client_for(bob)
    url = reverse("admin:crm_lead_change", args=[lead.pk])
    response = client.post(url, {
        "name": lead.name, "stage": "qualified", "priority": "0", "partner": lead.partner_id,
        "email_from": "", "phone": "", "user": bob.pk, "expected_revenue": "0",
        "probability": "10", "company": lead.company_id, "description": "",
    })
    assert response.status_code == 302, response.content[:2000]
    from mailroom.chatter.models import TrackingValue

    assert TrackingValue.objects.filter(new_value="Qualified", old_value="New").exists()


def test_cannot_move_a_record_into_a_foreign_company(client_for, lead, bob, globex):
    client = client_for(bob)
    url = reverse("admin:crm_lead_change", args=[lead.pk])
    response = client.post(url, {
        "name": lead.name, "stage": "new", "priority": "0", "user": bob.pk,
        "expected_revenue": "0", "probability": "10", "company": globex.pk,
    })
    assert response.status_code == 200  # form redisplayed with an error
    lead.refresh_from_db()
    assert lead.company_id != globex.pk


def test_audit_log_is_read_only_even_for_administrators(client_for, alice, acme):
    from mailroom.core.services import audit

    entry = audit("x", actor=alice, obj=acme)
    client = client_for(alice)
    assert client.get(reverse("admin:core_auditlog_changelist")).status_code == 200
    assert client.get(reverse("admin:core_auditlog_add")).status_code == 403
    assert client.post(reverse("admin:core_auditlog_delete", args=[entry.pk])).status_code == 403
    response = client.post(reverse("admin:core_auditlog_change", args=[entry.pk]),
                           {"action": "tampered"})
    assert response.status_code == 403
    entry.refresh_from_db()
    assert entry.action == "x"


def test_plain_user_cannot_change_companies_or_users(client_for, bob, acme):
    client = client_for(bob)
    assert client.get(reverse("admin:core_company_add")).status_code == 403
    assert client.get(reverse("admin:core_user_add")).status_code == 403
