"""Rendering templates for records: plain-data context, languages, formatting, layout,
validation at save, and render errors that create nothing."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from mailroom.business.invoicing import services as invoicing
from mailroom.business.invoicing.models import Invoice
from mailroom.business.sales.models import Tax
from mailroom.chatter.models import Message
from mailroom.chatter.services import thread_queryset
from mailroom.contacts.models import Partner
from mailroom.lib.sandbox import TemplateError
from mailroom.outgoing.models import OutgoingMail
from mailroom.templating import services
from mailroom.templating.models import EmailTemplate, TemplateTranslation
from mailroom.templating.rendering import parse_schedule, render_template

D = Decimal


@pytest.fixture
def german(acme):
    return Partner.objects.create(company=acme, name="Grete Müller", email="grete@kunde.example",
                                  language="de_DE")


def make_invoice(acme, bob, partner, amount="1234.50"):
    tax = Tax.objects.create(company=acme, name="No tax", percent=D("0"))
    draft = invoicing.save_invoice(
        Invoice(company=acme, partner=partner, user=bob, currency="EUR",
                invoice_date=datetime.date(2026, 11, 24)), actor=bob)
    return invoicing.set_lines(draft, [{"description": "Consulting", "quantity": 1,
                                        "price_unit": D(amount), "tax_ids": [tax.pk]}], actor=bob)


@pytest.fixture
def invoice_template(acme, tess):
    template = EmailTemplate(
        company=acme, name="Invoice mail", record_type="invoicing.invoice", text_lang="en_US",
        partner_to="{{ object.partner.id }}", lang="{{ object.partner.language }}",
        subject="Invoice {{ object.ref }}",
        body_html="<p>Total: {{ object.amount_total|money(object.currency) }}</p>"
                  "<p>Due {{ object.due_date|date('short') }}</p>"
                  "<p><a href=\"/portal/\">Your account</a></p>")
    return services.save_template(template, actor=tess, translations=[
        TemplateTranslation(lang="de_DE", subject="Rechnung {{ object.ref }}",
                            body_html="<p>Summe: {{ object.amount_total|money(object.currency) }}"
                                      "</p><p>Fällig {{ object.due_date|date('short') }}</p>")])


def test_language_from_the_customer_with_money_and_dates_in_that_language(
        acme, bob, german, invoice_template):
    invoice = make_invoice(acme, bob, german)
    rendered = render_template(invoice_template, invoice, user=bob)
    assert rendered.lang == "de_DE" and not rendered.lang_missing
    assert rendered.subject == f"Rechnung {invoice.ref}"
    assert "Summe: 1.234,50\xa0€" in rendered.body
    assert invoice.due_date.strftime("%d.%m.%y") in rendered.body
    assert [p.pk for p in rendered.to] == [german.pk]


def test_a_missing_translation_falls_back_to_the_template_text_in_its_own_language(
        acme, bob, invoice_template):
    spanish = Partner.objects.create(company=acme, name="Ana", email="ana@cliente.example",
                                     language="es_ES")
    invoice = make_invoice(acme, bob, spanish)  # es_ES: no translation
    rendered = render_template(invoice_template, invoice, user=bob)
    # the English text, with English amounts: not "1234,50 €" inside an English sentence
    assert rendered.lang == "en_US" and rendered.lang_missing and rendered.wanted_lang == "es_ES"
    assert rendered.subject == f"Invoice {invoice.ref}"
    assert "€1,234.50" in rendered.body


def test_no_language_expression_means_the_company_language(acme, bob, customer, tess):
    template = services.save_template(EmailTemplate(
        company=acme, name="Plain", record_type="crm.lead", email_to="x@client.example",
        subject="{{ object.name }}", body_html="{{ 1234.5|number }}"), actor=tess)
    from mailroom.business.crm.models import Lead

    lead = Lead.objects.create(company=acme, name="Deal")
    rendered = render_template(template, lead, user=bob)
    assert rendered.lang == "fr_FR" and "1\u202f234,5" in rendered.body


def test_the_context_is_plain_data_never_orm_objects(acme, bob, lead, tess):
    probe = ("{{ object.partner.name }}|{{ object.partner.save is defined }}|"
             "{{ user.password is defined }}|{{ object.stage_label }}")
    with pytest.raises(ValidationError):  # unknown fields are refused at save...
        services.save_template(EmailTemplate(
            company=acme, name="Probe", record_type="crm.lead", email_to="x@client.example",
            subject="s", body_html=probe), actor=tess)
    # ...and, saved anyway, the context has no methods and no password: registered fields only
    template = EmailTemplate.objects.create(company=acme, name="Probe", subject="s",
                                            record_type="crm.lead", email_to="x@client.example",
                                            body_html=probe)
    assert render_template(template, lead, user=bob).body == "Ada Lovelace|False|False|New"
    template.body_html = "{{ object.partner.__class__ }}"
    with pytest.raises(TemplateError):
        render_template(template, lead, user=bob)


def test_layout_inlines_css_makes_links_absolute_and_derives_text(acme, bob, customer,
                                                                   invoice_template, settings):
    invoice = make_invoice(acme, bob, customer)
    rendered = render_template(invoice_template, invoice, user=bob)
    assert 'href="http' in rendered.html and '/portal/"' in rendered.html
    assert 'href="/portal/' not in rendered.html
    assert 'style="' in rendered.html and "Acme Corp" in rendered.html  # branded footer
    assert "@media" in rendered.html  # the responsive rule stays in <style>
    assert "€1,234.50" in rendered.text and "<" not in rendered.text.replace("<http", "")


def test_a_render_error_names_template_field_and_line_and_creates_nothing(
        acme, bob, lead, tess):
    template = services.save_template(EmailTemplate(
        company=acme, name="Broken", record_type="crm.lead", email_to="x@client.example",
        subject="Hi", body_html="<p>ok</p>\n<p>{{ object.name + 1 }}</p>"), actor=tess)
    mails, messages = OutgoingMail.objects.count(), thread_queryset(Message, lead).count()
    with pytest.raises(TemplateError) as info:
        services.send_template(lead, template, actor=bob)
    text = str(info.value)
    assert "Broken" in text and "body" in text and "line 2" in text
    assert OutgoingMail.objects.count() == mails
    assert thread_queryset(Message, lead).count() == messages


def test_saving_checks_syntax_and_only_editors_go_beyond_placeholders(acme, bob, tess):
    fancy = EmailTemplate(company=acme, name="Fancy", record_type="crm.lead",
                          subject="{{ object.name }}",
                          body_html="{% for x in object.partner %}{{ x }}{% endfor %}")
    with pytest.raises(ValidationError) as info:
        services.save_template(fancy, actor=bob)
    assert "body_html" in info.value.message_dict
    services.save_template(fancy, actor=tess)  # a Template Editor may
    simple = EmailTemplate(company=acme, name="Simple", record_type="crm.lead",
                           subject="Hello {{ object.partner.name }}",
                           body_html="<p>{{ object.expected_revenue|money(company.currency) }}"
                                     "</p>")
    services.save_template(simple, actor=bob)
    broken = EmailTemplate(company=acme, name="Syntax", record_type="crm.lead",
                           subject="ok", body_html="<p>\n{% if %}</p>")
    with pytest.raises(ValidationError) as info:
        services.save_template(broken, actor=tess)
    assert "line 2" in " ".join(info.value.messages)


def test_names_are_unique_per_company_and_shared_templates_need_an_editor(acme, bob, tess):
    services.save_template(EmailTemplate(company=acme, name="Dup", record_type="crm.lead",
                                         subject="a"), actor=tess)
    with pytest.raises(ValidationError):
        services.save_template(EmailTemplate(company=acme, name="Dup", record_type="crm.lead",
                                             subject="b"), actor=tess)
    with pytest.raises(PermissionDenied):
        services.save_template(EmailTemplate(company=None, name="Shared", subject="x",
                                             record_type="crm.lead"), actor=bob)


def test_duplicate_copies_translations_and_archive_hides(acme, tess, invoice_template):
    copy = services.duplicate_template(invoice_template, actor=tess)
    assert copy.name == "Invoice mail (copy)" and copy.pk != invoice_template.pk
    assert list(copy.translations.values_list("lang", flat=True)) == ["de_DE"]
    services.set_active(copy, False, actor=tess)
    assert copy not in EmailTemplate.objects.usable_for(acme, "invoicing.invoice")


def test_predefined_shared_templates_exist_and_render(acme, bob, customer):
    template = EmailTemplate.objects.get(company__isnull=True, default_for="send_invoice")
    invoice = make_invoice(acme, bob, customer)
    rendered = render_template(template, invoice, user=bob, with_attachments=False)
    assert invoice.ref in rendered.subject and "€1,234.50" in rendered.body


def test_schedule_expressions():
    now = timezone.now()
    assert parse_schedule("2 days", now) == now + datetime.timedelta(days=2)
    assert parse_schedule("3 hours", now) == now + datetime.timedelta(hours=3)
    assert parse_schedule("", now) is None
    assert parse_schedule("2026-12-01", now).hour == 8
    with pytest.raises(ValueError):
        parse_schedule("tomorrow-ish", now)
