"""Customer text in one language: dates, numbers and amounts follow the language the text is
actually written in (the chosen translation's, else the template's own), with Babel's
currency spacing; "missing languages" lists only the company's languages that have neither a
translation nor the template's own language."""

from __future__ import annotations

import datetime
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_currency
from django.urls import reverse

from mailroom.business.invoicing import services as invoicing
from mailroom.business.invoicing.models import Invoice
from mailroom.business.sales.models import Tax
from mailroom.contacts.models import Partner
from mailroom.templating import services
from mailroom.templating.models import EmailTemplate, TemplateTranslation
from mailroom.templating.rendering import render_template

D = Decimal
BODY = "<p>{{ object.amount_total|money(object.currency) }} · {{ object.invoice_date|date }}</p>"


def partner(acme, name, language):
    return Partner.objects.create(company=acme, name=name, email=f"{name.lower()}@x.example",
                                  language=language)


def invoice_for(acme, bob, customer):
    tax = Tax.objects.create(company=acme, name="No tax", percent=D("0"))
    draft = invoicing.save_invoice(
        Invoice(company=acme, partner=customer, user=bob, currency="EUR",
                invoice_date=datetime.date(2026, 11, 24)), actor=bob)
    return invoicing.set_lines(draft, [{"description": "Consulting", "quantity": 1,
                                        "price_unit": D("1234.50"), "tax_ids": [tax.pk]}],
                               actor=bob)


def expected(locale: str) -> str:
    """What Babel itself gives: the spacing (no-break, narrow no-break) is its own."""
    return (f"<p>{format_currency(D('1234.50'), 'EUR', locale=locale)} · "
            f"{format_date(datetime.date(2026, 11, 24), 'medium', locale=locale)}</p>")


def make_template(acme, tess, *, text_lang="en_US", translations=()):
    return services.save_template(EmailTemplate(
        company=acme, name="Invoice", record_type="invoicing.invoice", text_lang=text_lang,
        partner_to="{{ object.partner.id }}", lang="{{ object.partner.language }}",
        subject="Invoice {{ object.amount_total|money(object.currency) }}", body_html=BODY),
        actor=tess, translations=list(translations))


def german_translation(subject="Rechnung {{ object.amount_total|money(object.currency) }}"):
    return TemplateTranslation(lang="de_DE", subject=subject, body_html=BODY)


def test_a_translation_formats_in_its_own_language(acme, bob, tess):
    template = make_template(acme, tess, translations=[german_translation()])
    rendered = render_template(template, invoice_for(acme, bob, partner(acme, "Grete", "de_DE")),
                               user=bob)
    assert rendered.lang == "de_DE" and not rendered.lang_missing
    assert rendered.body == expected("de_DE") == "<p>1.234,50\xa0€ · 24.11.2026</p>"
    assert rendered.subject == "Rechnung 1.234,50\xa0€"
    assert 'lang="de-DE"' in rendered.html
    assert "Lyon · Frankreich" in rendered.text  # the footer's address in German too


def test_display_texts_of_the_context_follow_the_text_language(acme, bob, tess):
    template = services.save_template(EmailTemplate(
        company=acme, name="Contact", record_type="contacts.partner", text_lang="en_US",
        partner_to="{{ object.id }}", lang="{{ object.language }}", subject="Hello",
        body_html="<p>{{ object.country_label }}</p>"), actor=tess, translations=[
        TemplateTranslation(lang="de_DE", subject="Hallo",
                            body_html="<p>{{ object.country_label }}</p>")])
    grete = Partner.objects.create(company=acme, name="Grete", email="grete@x.example",
                                   language="de_DE", country="FR")
    assert render_template(template, grete, user=bob).body == "<p>Frankreich</p>"
    grete.language = "es_ES"  # no translation: the English text, English country names
    grete.save()
    rendered = render_template(template, grete, user=bob)
    assert rendered.body == "<p>France</p>" and "Lyon · France" in rendered.text


def test_without_a_translation_the_text_and_its_formats_stay_in_the_template_language(
        acme, bob, tess):
    template = make_template(acme, tess, translations=[german_translation()])
    ana = partner(acme, "Ana", "es_ES")
    rendered = render_template(template, invoice_for(acme, bob, ana), user=bob)
    # English text, English amounts: never "1234,50 €" (Spanish) in an English sentence,
    # nor the company's French
    assert rendered.lang == "en_US" and rendered.lang_missing and rendered.wanted_lang == "es_ES"
    assert rendered.body == expected("en_US") == "<p>€1,234.50 · Nov 24, 2026</p>"
    assert rendered.subject == "Invoice €1,234.50"
    assert 'lang="en-US"' in rendered.html


def test_a_template_without_its_language_is_written_in_the_company_language(acme, bob, tess):
    template = make_template(acme, tess, text_lang="")
    rendered = render_template(template, invoice_for(acme, bob, partner(acme, "Grete", "de_DE")),
                               user=bob)
    assert rendered.lang == "fr_FR" and rendered.lang_missing  # acme writes in French
    assert rendered.body == expected("fr_FR")
    assert "\u202f" in rendered.body and "\xa0€" in rendered.body  # Babel's French spacing


def test_a_regional_variant_reads_the_same_language_with_its_conventions(acme, bob, tess):
    template = make_template(acme, tess)  # en_US text
    rendered = render_template(template, invoice_for(acme, bob, partner(acme, "Ada", "en_GB")),
                               user=bob)
    assert rendered.lang == "en_GB" and not rendered.lang_missing
    assert rendered.body == expected("en_GB") == "<p>€1,234.50 · 24 Nov 2026</p>"


def test_a_half_translation_formats_each_part_in_its_own_language(acme, bob, tess):
    template = make_template(acme, tess, translations=[german_translation(subject="")])
    rendered = render_template(template, invoice_for(acme, bob, partner(acme, "Grete", "de_DE")),
                               user=bob)
    assert rendered.subject == "Invoice €1,234.50"  # the English subject, English amount
    assert rendered.body == expected("de_DE")


# --- missing languages ---------------------------------------------------------------------------

def test_missing_languages_are_those_with_neither_a_translation_nor_the_template_language(
        acme, tess):
    spoken = ["de_DE", "en_GB", "fr_FR", "es_ES", "es", ""]
    english = make_template(acme, tess, translations=[german_translation()])
    # en_GB reads the en_US text, de_DE has its translation; the company's French does not
    assert services.missing_languages(english, spoken) == ["es", "es_ES", "fr_FR"]
    english.text_lang = ""
    english.save()  # now written in the company's French
    assert services.missing_languages(english, spoken) == ["en_GB", "es", "es_ES"]


def test_a_shared_template_is_judged_by_the_company_using_it(db, acme, tess):
    shared = EmailTemplate.objects.create(company=None, name="Shared", subject="x",
                                          record_type="crm.lead")
    assert services.missing_languages(shared, ["fr_FR", "de_DE"], "fr_FR") == ["de_DE"]
    predefined = EmailTemplate.objects.get(company__isnull=True, default_for="send_invoice")
    assert predefined.text_lang == "en_US"  # the predefined templates are English
    assert services.missing_languages(predefined, ["fr_FR", "de_DE", "en_US"], "fr_FR") == [
        "fr_FR"]


def test_the_editor_lists_the_missing_languages(client_for, acme, tess):
    template = make_template(acme, tess, translations=[german_translation()])
    for name, language in (("Grete", "de_DE"), ("Ada", "en_GB"), ("Ana", "es_ES"),
                           ("Jean", "fr_FR")):
        partner(acme, name, language)
    page = client_for(tess).get(
        reverse("admin:templating_emailtemplate_change", args=[template.pk])).content.decode()
    assert "Missing languages: Spanish, French." in page  # by code: es_ES, fr_FR
    assert "otherwise they get the English (US) text" in page
