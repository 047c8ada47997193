"""Alias domains, aliases and allowed senders in the back office: saves go through the
services (audited), service errors land on their field, Test sets the alias status."""

from __future__ import annotations

from django.urls import reverse

from mailroom.core.models import AuditLog
from mailroom.routing.models import Alias, AliasDomain, AllowedSender


def url(model: str, action: str = "changelist", *args) -> str:
    return reverse(f"admin:routing_{model}_{action}", args=args)


def alias_data(alias: Alias, **changes) -> dict:
    data = {"domain": alias.domain_id, "local_part": alias.local_part,
            "company": alias.company_id, "record_type": alias.record_type,
            "defaults": "{}", "thread_content_type": "", "thread_object_id": "",
            "parent_content_type": "", "parent_object_id": "",
            "contact_policy": alias.contact_policy, "bounce_message": "", "active": "on"}
    data.update(changes)
    return data


def test_lists_and_forms_render(client_for, mia, domain):
    client = client_for(mia)
    alias = Alias.objects.get(domain=domain, local_part="support")
    sender = AllowedSender.objects.create(company=domain.company, pattern="partner.example")
    for target in (url("aliasdomain"), url("aliasdomain", "add"),
                   url("aliasdomain", "change", domain.pk), url("alias"), url("alias", "add"),
                   url("alias", "change", alias.pk), url("allowedsender"),
                   url("allowedsender", "add"), url("allowedsender", "change", sender.pk)):
        response = client.get(target)
        assert response.status_code == 200, target
    html = client.get(url("aliasdomain", "change", domain.pk)).content.decode()
    assert "bounce@acme.test" in html and "catchall@acme.test" in html
    assert "notifications@acme.test" in html
    html = client.get(url("alias")).content.decode()
    assert "support@acme.test" in html and "Ticket" in html and "Not tested" in html
    assert "Whole company" in client.get(url("allowedsender")).content.decode()


def test_creating_a_domain_goes_through_the_service_and_makes_default_aliases(client_for,
                                                                            mia, acme):
    response = client_for(mia).post(url("aliasdomain", "add"), {
        "name": "Mail.Acme.Example", "company": acme.pk, "sequence": 10,
        "bounce_alias": "bounce", "catchall_alias": "catchall", "default_from": "notifications",
    }, follow=True)
    assert response.status_code == 200
    domain = AliasDomain.objects.get(name="mail.acme.example")
    assert AuditLog.objects.filter(action="routing.aliasdomain.create", actor=mia).exists()
    assert AuditLog.objects.filter(action="routing.alias.defaults").exists()
    assert domain.aliases.filter(local_part="support").exists()
    assert "Default aliases created" in response.content.decode()


def test_create_default_aliases_action(client_for, mia, acme):
    domain = AliasDomain.objects.create(company=acme, name="bare.test")
    response = client_for(mia).post(url("aliasdomain"), {
        "action": "create_default_aliases", "_selected_action": [domain.pk]}, follow=True)
    assert "Created:" in response.content.decode()
    assert domain.aliases.count() > 0


def test_saving_an_alias_is_audited(client_for, mia, domain):
    alias = Alias.objects.get(domain=domain, local_part="support")
    response = client_for(mia).post(url("alias", "change", alias.pk),
                                    alias_data(alias, contact_policy="partners"))
    assert response.status_code == 302, response.content.decode()[:2000]
    alias.refresh_from_db()
    assert alias.contact_policy == "partners"
    assert AuditLog.objects.filter(action="routing.alias.change", actor=mia).exists()


def test_invalid_defaults_are_an_error_on_the_field(client_for, mia, domain):
    alias = Alias.objects.get(domain=domain, local_part="support")
    response = client_for(mia).post(url("alias", "change", alias.pk),
                                    alias_data(alias, defaults='{"no_such_field": 1}'))
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "defaults" in form.errors
    assert "no_such_field" in str(form.errors["defaults"])
    alias.refresh_from_db()
    assert alias.defaults == {}


def test_force_thread_must_name_a_record_of_the_company(client_for, mia, domain,
                                                       globex_lead):
    from django.contrib.contenttypes.models import ContentType

    alias = Alias.objects.get(domain=domain, local_part="support")
    lead_type = ContentType.objects.get(app_label="crm", model="lead")
    response = client_for(mia).post(url("alias", "change", alias.pk), alias_data(
        alias, thread_content_type=lead_type.pk, thread_object_id=globex_lead.pk))
    assert response.status_code == 200
    assert "thread_object_id" in response.context["adminform"].form.errors


def test_test_action_marks_valid_and_invalid(client_for, mia, domain, acme):
    valid = Alias.objects.get(domain=domain, local_part="support")
    closed = Alias.objects.get(domain=domain, local_part="sales")
    Alias.objects.filter(pk=closed.pk).update(allowlist_only=True)
    response = client_for(mia).post(url("alias"), {
        "action": "test_selected", "_selected_action": [valid.pk, closed.pk]}, follow=True)
    html = response.content.decode()
    valid.refresh_from_db()
    closed.refresh_from_db()
    assert valid.status == "valid" and valid.last_error == ""
    assert closed.status == "invalid" and closed.last_error
    assert "support@acme.test: valid" in html
    assert "sales@acme.test: invalid" in html
    assert AuditLog.objects.filter(action="routing.alias.test").count() == 2


def test_allowed_sender_scopes_and_duplicates(client_for, mia, domain, acme):
    client = client_for(mia)
    data = {"pattern": "Partner.Example", "company": acme.pk, "alias": "",
            "alias_domain": domain.pk, "note": "our reseller"}
    assert client.post(url("allowedsender", "add"), data).status_code == 302
    sender = AllowedSender.objects.get()
    assert sender.pattern == "partner.example" and sender.alias_domain == domain
    assert AuditLog.objects.filter(action="routing.allowedsender.create").exists()
    response = client.post(url("allowedsender", "add"), data)
    assert response.status_code == 200
    assert "already allowed" in str(response.context["adminform"].form.errors["pattern"])
    assert "Domain acme.test" in client.get(url("allowedsender")).content.decode()


def test_a_user_only_reads_aliases(client_for, bob, domain):
    client = client_for(bob)
    alias = Alias.objects.get(domain=domain, local_part="support")
    assert client.get(url("alias")).status_code == 200
    response = client.post(url("alias", "change", alias.pk), alias_data(
        alias, contact_policy="internal"))
    assert response.status_code == 403
    assert client.get(url("allowedsender")).status_code == 403


def test_another_company_cannot_see_or_pick_the_domain(client_for, charlie, domain,
                                                       globex_domain):
    client = client_for(charlie)
    alias = Alias.objects.get(domain=domain, local_part="support")
    assert client.get(url("aliasdomain", "change", domain.pk)).status_code == 404
    assert client.get(url("alias", "change", alias.pk)).status_code == 404
    html = client.get(url("aliasdomain")).content.decode()
    assert "globex.test" in html and "acme.test" not in html
