# ruff: noqa: F811 - the api_as fixture is imported, then named by tests
"""Templates that cannot send broken text: an unknown placeholder is refused at save (service,
editor form, API) with the nearest valid names; a render never prints an undefined field as
empty text (the error names the template, the field and the line) and creates nothing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from mailroom.chatter.models import Message
from mailroom.chatter.services import thread_queryset
from mailroom.lib.sandbox import TemplateError
from mailroom.outgoing.models import OutgoingMail
from mailroom.templating import services
from mailroom.templating.models import EmailTemplate, TemplateTranslation
from tests.api.support import api_as, fields_named  # noqa: F401 - api_as is a fixture

ADD = reverse("admin:templating_emailtemplate_add")
API = "/api/v1/templates"


def lead_template(acme, **fields) -> EmailTemplate:
    values = {"company": acme, "name": "Lead hello", "record_type": "crm.lead",
              "partner_to": "{{ object.partner.id }}", "subject": "About {{ object.name }}",
              "body_html": "<p>Hello {{ object.partner.name }}</p>", **fields}
    return EmailTemplate(**values)


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


# --- at save -------------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["subject", "body_html", "email_to", "email_cc", "reply_to",
                                   "email_from", "partner_to", "lang", "scheduled_send"])
def test_an_unknown_placeholder_in_any_field_is_refused_with_the_nearest_names(
        acme, tess, field):
    template = lead_template(acme, **{field: "x\n{{ object.partner.nam }}"})
    with pytest.raises(ValidationError) as info:
        services.save_template(template, actor=tess)  # a Template Editor too
    [message] = info.value.message_dict[field]
    assert "Line 2: ‘object.partner.nam’ is not a field of leads." in message
    assert "Did you mean ‘object.partner.name’?" in message
    assert not EmailTemplate.objects.filter(name="Lead hello").exists()


def test_translations_loops_and_set_variables(acme, tess, bob):
    template = lead_template(acme)
    with pytest.raises(ValidationError) as info:
        services.save_template(template, actor=tess, translations=[TemplateTranslation(
            lang="de_DE", subject="Hallo {{ objct.name }}", body_html="<p>ok</p>")])
    [message] = info.value.message_dict["translations"]
    assert message.startswith("Subject (de_DE): Line 1: ‘objct.name’") and \
        "‘object.name’" in message
    fine = lead_template(acme, body_html=(
        "{% set who = object.partner %}{{ who.name }}{% for x in [1, 2] %}{{ x }}{% endfor %}"
        "{{ object.stage_label }} {{ object.partner.id }} {{ company.name }} {{ user.name }}"
        "{{ ctx.anything }}{{ object.display_name }} {{ object.url }}"))
    services.save_template(fine, actor=tess)
    # a simple template (no Jinja beyond placeholders) is checked the same for everybody
    simple = lead_template(acme, name="Simple", subject="Hi {{ object.partner.emial }}")
    with pytest.raises(ValidationError, match="object.partner.email"):
        services.save_template(simple, actor=bob)


def test_loop_items_are_checked_against_the_lines(acme, tess):
    quote = EmailTemplate(company=acme, name="Quote", record_type="sales.quotation",
                          subject="{{ object.ref }}",
                          body_html="{% for line in object.lines %}\n{{ line.descripion }}"
                                    "{% endfor %}")
    with pytest.raises(ValidationError) as info:
        services.save_template(quote, actor=tess)
    assert "Line 2: ‘line.descripion’ is not a field of quotations. " \
           "Did you mean ‘line.description’?" in info.value.message_dict["body_html"][0]
    quote.body_html = "{{ object.lines.description }}"
    with pytest.raises(ValidationError, match="is a list: loop over it"):
        services.save_template(quote, actor=tess)


def test_the_editor_form_shows_the_unknown_placeholder_in_red(client_for, acme, tess):
    response = client_for(tess).post(ADD, form_data(
        acme, body_html="<p>Dear {{ object.partner.nam }}</p>"))
    assert response.status_code == 200  # the form again, not a redirect
    page = response.content.decode()
    assert "‘object.partner.nam’ is not a field of leads." in page
    assert "Did you mean ‘object.partner.name’?" in page
    assert not EmailTemplate.objects.filter(name="Lead hello").exists()
    response = client_for(tess).post(ADD, form_data(acme))
    assert response.status_code == 302


def test_the_api_refuses_unknown_placeholders_on_create_and_change(acme, tess, api_as):
    api = api_as(tess)
    body = {"name": "API hello", "record_type": "crm.lead", "subject": "Hi",
            "body_html": "<p>{{ object.partner.nam }}</p>",
            "partner_to": "{{ object.partner.id }}"}
    response = api.post(API, body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["field"] == "body_html" and "‘object.partner.nam’" in error["message"]
    assert "Did you mean ‘object.partner.name’?" in error["message"]
    assert not EmailTemplate.objects.filter(name="API hello").exists()

    body["body_html"] = "<p>{{ object.partner.name }}</p>"
    created = api.post(API, body)
    assert created.status_code == 201, created.content
    template = created.json()
    assert template["company_id"] == acme.pk and template["body_html"] == body["body_html"]

    response = api.patch(f"{API}/{template['id']}", {"subject": "{{ object.stge }}"})
    assert response.status_code == 422 and fields_named(response) == ["subject"]
    assert "‘object.stage’" in response.json()["detail"][0]["message"]
    assert EmailTemplate.objects.get(pk=template["id"]).subject == "Hi"
    response = api.patch(f"{API}/{template['id']}", {"subject": "{{ object.stage_label }}",
                                                      "translations": [{
                                                          "lang": "de_DE", "subject": "x",
                                                          "body_html": "{{ object.nme }}"}]})
    assert response.status_code == 422 and "‘object.name’" in response.json()["detail"][0][
        "message"]
    response = api.patch(f"{API}/{template['id']}", {"subject": "{{ object.stage_label }}"})
    assert response.status_code == 200 and response.json()["subject"] == \
        "{{ object.stage_label }}"


def test_the_api_create_needs_the_permission(acme, bob, api_as):
    response = api_as(bob).post(API, {"name": "x", "record_type": "crm.lead", "shared": True})
    assert response.status_code == 403
    response = api_as(bob).post(API, {"name": "x", "record_type": "no.such"})
    assert response.status_code == 422 and fields_named(response) == ["record_type"]


# --- at render -----------------------------------------------------------------------------------

def test_an_undefined_field_at_render_names_template_field_and_line_and_sends_nothing(
        acme, bob, lead):
    # written straight to the table, as an older template or an import would be
    template = EmailTemplate.objects.create(
        company=acme, name="Old lead mail", record_type="crm.lead",
        partner_to="{{ object.partner.id }}", subject="About {{ object.name }}",
        body_html="<p>Hello</p>\n<p>{{ object.partner.nam }}</p>")
    mails, messages = OutgoingMail.objects.count(), thread_queryset(Message, lead).count()
    with pytest.raises(TemplateError) as info:
        services.send_template(lead, template, actor=bob)
    error = info.value
    assert (error.template, error.field, error.line) == ("Old lead mail", "body", 2)
    assert str(error) == "Template 'Old lead mail', body, line 2: " \
                         "'object.partner.nam' is undefined"
    assert OutgoingMail.objects.count() == mails
    assert thread_queryset(Message, lead).count() == messages


def test_an_empty_relation_is_empty_not_an_error(acme, bob, tess):
    from mailroom.business.crm.models import Lead

    lonely = Lead.objects.create(company=acme, name="No contact yet")
    template = services.save_template(lead_template(
        acme, partner_to="", email_to="x@client.example",
        body_html="<p>Hello {{ object.partner.name }}{{ object.partner.name|upper }}</p>"),
        actor=tess)
    assert services.render_template(template, lonely, user=bob).body == "<p>Hello </p>"


def test_every_placeholder_the_browser_offers_passes_the_check():
    from mailroom.core import record_types
    from mailroom.templating.checks import unknown_placeholders
    from mailroom.templating.context import placeholders_for

    loops = []
    for record_type in record_types.all_types():
        for item in placeholders_for(record_type):
            assert unknown_placeholders(item.snippet, record_type) == [], item
            loops += [item.snippet] if item.loop else []
    assert "{% for line in object.lines %}{{ line.description }}{% endfor %}" in loops
