"""The template screens: saving through the service with red lines, the placeholder browser,
preview with inline errors, "send a test to me", and company scoping (404)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from mailroom.business.sales import services as sales
from mailroom.business.sales.models import Quotation, Tax
from mailroom.outgoing.models import OutgoingMail
from mailroom.templating import services
from mailroom.templating.models import EmailTemplate

ADD = reverse("admin:templating_emailtemplate_add")
LIST = reverse("admin:templating_emailtemplate_changelist")


def change_url(template) -> str:
    return reverse("admin:templating_emailtemplate_change", args=[template.pk])


def form_data(acme, **fields) -> dict:
    data = {"name": "Lead hello", "company": acme.pk, "record_type": "crm.lead",
            "subject": "Hello {{ object.partner.name }}",
            "body_html": "<p>Dear {{ object.partner.name }}</p>", "layout": "branded",
            "partner_to": "{{ object.partner.id }}", "active": "on", "default_for": ""}
    for prefix in ("translations", "attachments"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0",
                     f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"})
    data.update(fields)
    return data


@pytest.fixture
def lead_template(acme, tess):
    return services.save_template(EmailTemplate(
        company=acme, name="Lead follow-up", record_type="crm.lead",
        partner_to="{{ object.partner.id }}", subject="About {{ object.name }}",
        body_html="<p>Hello {{ object.partner.name }}</p>"), actor=tess)


@pytest.fixture
def quotation(acme, bob, customer):
    tax = Tax.objects.create(company=acme, name="VAT 20%", percent=Decimal("20"))
    draft = sales.save_quotation(Quotation(company=acme, partner=customer, user=bob), actor=bob)
    return sales.set_lines(draft, [{"description": "Widgets", "quantity": 3,
                                    "price_unit": Decimal("100"), "tax_ids": [tax.pk]}],
                           actor=bob)


def test_admin_saves_a_template_through_the_service_with_a_translation(client_for, acme, bob):
    data = form_data(acme, **{"translations-TOTAL_FORMS": "1", "translations-0-lang": "de_DE",
                              "translations-0-subject": "Hallo {{ object.partner.name }}",
                              "translations-0-body_html": "<p>Hallo</p>"})
    response = client_for(bob).post(ADD, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    template = EmailTemplate.objects.get(name="Lead hello")
    assert template.company == acme and template.updated_by == bob
    assert [t.lang for t in template.translations.all()] == ["de_DE"]
    assert client_for(bob).get(LIST).content.decode().count("Lead hello") >= 1


def test_a_non_simple_body_is_refused_for_a_plain_user_with_a_red_line(client_for, acme, bob):
    data = form_data(acme, body_html="<p>{{ object.partner.name.upper() }}</p>")
    response = client_for(bob).post(ADD, data)
    assert response.status_code == 200
    assert not EmailTemplate.objects.filter(name="Lead hello").exists()
    errors = response.context["adminform"].form.errors
    assert "body_html" in errors and "Body" in errors["body_html"][0]


def test_a_template_editor_may_write_logic(client_for, acme, tess):
    data = form_data(acme, body_html="{% if object.partner %}<p>Hi</p>{% endif %}")
    assert client_for(tess).post(ADD, data).status_code == 302


def test_a_syntax_error_shows_under_the_field(client_for, acme, tess):
    data = form_data(acme, subject="Hello {{ object.partner.name")
    response = client_for(tess).post(ADD, data)
    assert response.status_code == 200
    assert "subject" in response.context["adminform"].form.errors


def test_the_change_page_lists_placeholders_and_the_preview(client_for, lead_template, bob,
                                                           lead):
    page = client_for(bob).get(change_url(lead_template)).content.decode()
    assert 'data-placeholder="{{ object.partner.name }}"' in page
    assert reverse("templating:preview", args=[lead_template.pk]) in page
    assert f'value="{lead.pk}"' in page  # a recent lead to preview on


def test_preview_renders_subject_recipients_and_a_sandboxed_iframe(client_for, lead_template,
                                                                   bob, lead):
    url = reverse("templating:preview", args=[lead_template.pk])
    response = client_for(bob).get(url, {"record": lead.pk})
    page = response.content.decode()
    assert response.status_code == 200
    assert "About Big deal" in page and "ada@client.example" in page
    assert 'sandbox=""' in page and "srcdoc=" in page and "Hello Ada Lovelace" in page


def test_preview_of_a_quotation_lists_its_pdf(client_for, acme, bob, tess, quotation):
    template = EmailTemplate.objects.get(default_for="send_quotation", company=None)
    url = reverse("templating:preview", args=[template.pk])
    page = client_for(bob).get(url, {"record": quotation.pk}).content.decode()
    assert quotation.ref in page and ".pdf" in page


def test_a_render_error_shows_inline_naming_field_and_line(client_for, acme, tess, lead):
    template = services.save_template(EmailTemplate(
        company=acme, name="Broken", record_type="crm.lead", subject="x",
        body_html="<p>ok</p>\n<p>{{ 1 // 0 }}</p>"), actor=tess)
    url = reverse("templating:preview", args=[template.pk])
    response = client_for(tess).get(url, {"record": lead.pk})
    page = response.content.decode()
    assert response.status_code == 422
    assert "mr-tpl-error" in page and "body" in page and "line 2" in page
    assert not OutgoingMail.objects.exists()


def test_send_a_test_goes_to_me_only(client_for, lead_template, bob, lead):
    bob.email = "bob@acme.example"  # .test is a reserved domain the validator refuses
    bob.save()
    url = reverse("templating:send_test", args=[lead_template.pk])
    response = client_for(bob).post(url, {"record": lead.pk})
    assert response.status_code == 200, response.content.decode()
    assert "mr-tpl-ok" in response.content.decode()
    mail = OutgoingMail.objects.get()
    assert [r.address for r in mail.recipients.all()] == ["bob@acme.example"]
    assert mail.subject == "[Test] About Big deal"


def test_other_companies_templates_and_records_are_404(client_for, lead_template, charlie,
                                                       lead, globex):
    client = client_for(charlie)
    assert client.get(change_url(lead_template)).status_code == 404
    assert client.get(reverse("templating:preview", args=[lead_template.pk]),
                      {"record": lead.pk}).status_code == 404
    assert client.post(reverse("templating:send_test", args=[lead_template.pk]),
                       {"record": lead.pk}).status_code == 404
    assert "Lead follow-up" not in client.get(LIST).content.decode()


def test_preview_on_another_companys_record_finds_nothing(client_for, acme, tess, globex_lead):
    template = services.save_template(EmailTemplate(
        company=None, name="Shared lead", record_type="crm.lead", subject="Hi"), actor=tess)
    response = client_for(tess).get(reverse("templating:preview", args=[template.pk]),
                                    {"record": globex_lead.pk})
    assert "No such record" in response.content.decode()
    assert "Globex secret deal" not in response.content.decode()


def test_duplicate_and_archive_actions(client_for, lead_template, bob):
    client = client_for(bob)
    client.post(LIST, {"action": "duplicate_selected", "_selected_action": [lead_template.pk]})
    assert EmailTemplate.objects.filter(name="Lead follow-up (copy)").exists()
    client.post(LIST, {"action": "archive_selected", "_selected_action": [lead_template.pk]})
    lead_template.refresh_from_db()
    assert lead_template.active is False
