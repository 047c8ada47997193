"""The composer on a record and mass sending from a list: one mail and one chatter entry per
send, idempotent double submits and chunks, company scoping."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from mailroom.business.crm.models import Lead
from mailroom.chatter.models import Message
from mailroom.outgoing.models import OutgoingMail
from mailroom.templating import services
from mailroom.templating.models import EmailTemplate


@pytest.fixture
def lead_template(acme, tess):
    return services.save_template(EmailTemplate(
        company=acme, name="Lead follow-up", record_type="crm.lead", default_for="lead_followup",
        partner_to="{{ object.partner.id }}", subject="About {{ object.name }}",
        body_html="<p>Hello {{ object.partner.name }}</p>"), actor=tess)


def compose_url(record) -> str:
    content_type = ContentType.objects.get_for_model(record)
    return reverse("templating:compose", args=[content_type.pk, record.pk])


def emails(record):
    return Message.objects.filter(message_type=Message.Type.EMAIL, object_id=record.pk)


def test_composer_preselects_the_default_template_and_renders_it(client_for, bob, lead,
                                                                 lead_template, customer):
    response = client_for(bob).get(compose_url(lead))
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["template"] == lead_template
    assert form.initial["subject"] == "About Big deal"
    assert form.initial["partners"] == [customer.pk]
    assert len(form.initial["key"]) == 32


def test_changing_the_template_refills_the_fields(client_for, bob, lead, lead_template):
    content_type = ContentType.objects.get_for_model(lead)
    url = reverse("templating:compose_fill", args=[content_type.pk, lead.pk])
    page = client_for(bob).get(url, {"template": lead_template.pk, "key": "k" * 32})
    assert "About Big deal" in page.content.decode() and "k" * 32 in page.content.decode()
    empty = client_for(bob).get(url, {"template": "", "key": "k"}).context["form"]
    assert empty.initial["subject"] == "Big deal"


def test_send_creates_one_mail_and_one_chatter_message_even_when_posted_twice(
        client_for, bob, lead, lead_template, customer):
    data = {"key": "a" * 32, "template": lead_template.pk, "partners": [customer.pk],
            "to": "boss@client.example", "subject": "Edited subject",
            "body": "<p>My words</p>", "lang": "en_GB", "when": "now"}
    client = client_for(bob)
    first = client.post(compose_url(lead), data)
    assert first.status_code == 302 and first["Location"].endswith(f"/{lead.pk}/change/")
    again = client.post(compose_url(lead), data)
    assert again.status_code == 302
    mail = OutgoingMail.objects.get()
    assert mail.subject == "Edited subject" and "My words" in mail.body_html
    assert sorted(r.address for r in mail.recipients.all()) == ["ada@client.example",
                                                                "boss@client.example"]
    assert emails(lead).count() == 1
    assert "Edited subject" in client.get(first["Location"], follow=True).content.decode()


def test_send_with_a_file_and_a_schedule(client_for, bob, lead, customer):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {"key": "b" * 32, "template": "", "partners": [customer.pk], "subject": "Files",
            "body": "<p>See attached</p>", "lang": "fr_FR", "when": "later",
            "scheduled_at": "2099-01-02T09:30",
            "files": SimpleUploadedFile("terms.txt", b"terms", "text/plain")}
    response = client_for(bob).post(compose_url(lead), data)
    assert response.status_code == 302
    mail = OutgoingMail.objects.get()
    assert mail.next_attempt_at.year == 2099
    assert [a.name for a in emails(lead).get().attachments.all()] == ["terms.txt"]


def test_errors_show_inline_and_send_nothing(client_for, bob, lead):
    data = {"key": "c" * 32, "subject": "", "body": "x", "when": "later", "lang": "fr_FR"}
    response = client_for(bob).post(compose_url(lead), data, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert response.status_code == 422
    assert "Choose when to send." in page and "mr-tpl-error" in page
    assert not OutgoingMail.objects.exists() and not emails(lead).exists()


def test_other_companies_records_are_404(client_for, charlie, lead, lead_template):
    client = client_for(charlie)
    assert client.get(compose_url(lead)).status_code == 404
    assert client.post(compose_url(lead), {"key": "d" * 32, "subject": "x"}).status_code == 404
    assert not OutgoingMail.objects.exists()


def test_the_composer_needs_a_login(client, lead):
    response = client.get(compose_url(lead))
    assert response.status_code == 302 and "login" in response["Location"]


def test_mass_send_over_200_leads_goes_to_the_worker(client_for, acme, bob, customer,
                                                     lead_template):
    from mailroom.templating import mass_engine

    leads = Lead.objects.bulk_create(Lead(company=acme, name=f"Lead {n}", partner=customer)
                                     for n in range(200))
    client = client_for(bob)
    changelist = reverse("admin:crm_lead_changelist")
    page = client.post(changelist, {"action": "send_email",
                                    "_selected_action": [lead.pk for lead in leads]})
    assert page.status_code == 200 and "Send 200 emails" in page.content.decode()
    data = {"content_type": ContentType.objects.get_for_model(Lead).pk,
            "ids": page.context["ids"], "batch": page.context["batch"],
            "template": lead_template.pk, "offset": 0}
    url = reverse("templating:mass_chunk")
    response = client.post(url, data)
    assert response.status_code == 200 and "Waiting for a worker" in response.content.decode()
    client.post(url, data)  # a retried request: the same job
    assert mass_engine.mass_step("w1") is True
    assert OutgoingMail.objects.count() == 200
    assert Message.objects.filter(message_type=Message.Type.EMAIL).count() == 200
    client.post(url, data)
    assert mass_engine.mass_step("w1") is False and OutgoingMail.objects.count() == 200


def test_mass_send_skips_other_companies_ids(client_for, bob, lead, globex_lead,
                                             lead_template):
    response = client_for(bob).post(reverse("templating:mass_chunk"), {
        "content_type": ContentType.objects.get_for_model(Lead).pk,
        "ids": f"{lead.pk},{globex_lead.pk}", "batch": "x1", "template": lead_template.pk,
        "offset": 0})
    assert f"#{globex_lead.pk}: no such record" in response.content.decode()
    assert OutgoingMail.objects.count() == 1


def test_send_by_email_on_a_quotation_opens_the_composer_with_its_pdf(client_for, acme, bob,
                                                                      customer):
    from decimal import Decimal

    from mailroom.business.sales import services as sales
    from mailroom.business.sales.models import Quotation

    draft = sales.save_quotation(Quotation(company=acme, partner=customer, user=bob), actor=bob)
    quotation = sales.set_lines(draft, [{"description": "Widgets", "quantity": 1,
                                         "price_unit": Decimal("10")}], actor=bob)
    client = client_for(bob)
    button = reverse("admin:sales_quotation_send_by_email", args=[quotation.pk])
    assert button in client.get(reverse("admin:sales_quotation_change",
                                        args=[quotation.pk])).content.decode()
    response = client.get(button, follow=True)
    form = response.context["form"]
    assert form.initial["template"].default_for == "send_quotation"
    assert form.initial["attach_document"] is True
    assert quotation.ref in form.initial["subject"]
    data = {"key": "e" * 32, "template": form.initial["template"].pk,
            "partners": [customer.pk], "subject": form.initial["subject"],
            "body": form.initial["body"], "lang": "en_GB", "when": "now",
            "attach_document": "on"}
    assert client.post(compose_url(quotation), data).status_code == 302
    mail = OutgoingMail.objects.get()
    assert [a.name for a in mail.attachments.all()][0].endswith(".pdf")
